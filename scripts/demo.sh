#!/usr/bin/env bash
# Builds liveclip and runs a live demo: a test source with a visible clock,
# encoded to H.264 + AAC, into hlsclipsink (HLS recording with live and
# replay playlists), periodicclipper (an MP4 clip every 10 s), thumbnailer
# (a still every 5 s, a latest image and a storyboard) and motionclipenc (a
# 3 s muted motion clip every 10 s, from the raw picture).
# Usage: ./scripts/demo.sh [file | rtsp://… | srt://… | rtmp://… | /dev/videoN]
# It runs until Ctrl-C (or DURATION seconds, when set); OUT is where files go;
# HTTP the address of the HTTP API (default 127.0.0.1:8080).
set -euo pipefail
# A file given by a relative path is resolved before the cd below.
INPUT="${1:-}"
if [ -n "$INPUT" ] && [[ "$INPUT" != *://* ]] && [[ "$INPUT" != /dev/video* ]]; then
  INPUT="$(realpath "$INPUT")"
fi
cd "$(dirname "$0")/.."
./scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
# LIVECLIP_PLUGIN_DIR: use a plugin built elsewhere (the tests do) instead
# of building it here.
if [ -z "${LIVECLIP_PLUGIN_DIR:-}" ]; then
  cargo build --release --locked
  LIVECLIP_PLUGIN_DIR="$PWD/target/release"
fi
export GST_PLUGIN_PATH="$LIVECLIP_PLUGIN_DIR${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
OUT="${OUT:-$PWD/demo-output}"
DURATION="${DURATION:-0}"
HTTP="${HTTP:-127.0.0.1:8080}"
mkdir -p "$OUT/clips" "$OUT/recordings" "$OUT/thumbs" "$OUT/motion" "$OUT/site"
# The Live Replay page: the project's static files, hls.js from npm, and the
# demo's thumbnails and motion clips, served by hlsclipsink at /ui/.
for f in "$PWD"/web/ui/*; do ln -sf "$f" "$OUT/site/"; done
ln -sf "$PWD/web/node_modules/hls.js/dist/hls.min.js" "$OUT/site/hls.min.js"
ln -sfn "$OUT/thumbs" "$OUT/site/thumbs"
ln -sfn "$OUT/motion" "$OUT/site/motion"
echo "liveclip demo: ${DURATION}s of live video; clips in $OUT/clips, HLS in $OUT/recordings"
echo "liveclip demo: HTTP API on http://$HTTP/ :"
echo "  Live Replay     http://$HTTP/ui/?stream=demo"
echo "  live playlist   http://$HTTP/demo/manifest/video.m3u8"
echo "  preview (1 min) http://$HTTP/demo/manifest/video.m3u8?duration=1m"
echo "  last 10 s MP4   http://$HTTP/demo/clip.mp4?duration=10s"
echo "  sessions        http://$HTTP/demo/sessions"
echo "  clip now        curl -X POST 'http://$HTTP/clipper/mp4?returnFile=false'"
# The source: a test picture with a running clock and frame counter burnt
# in and test audio, or the input given as the first argument.
VIDEO_CAPS=video/x-raw,width=1280,height=720,framerate=30/1
AUDIO_CAPS=audio/x-raw,rate=48000,channels=2
TEST_AUDIO=(audiotestsrc is-live=true wave=ticks)
if [ -z "$INPUT" ]; then
  SOURCE=(videotestsrc is-live=true pattern=ball ! "$VIDEO_CAPS"
    ! timeoverlay "font-desc=Sans 36" halignment=center valignment=center
    ! clockoverlay "time-format=%H:%M:%S" "font-desc=Sans 24")
  AUDIO=("${TEST_AUDIO[@]}")
elif [[ "$INPUT" == /dev/video* ]]; then
  # A capture device (no audio: test tone).
  SOURCE=(v4l2src "device=$INPUT" ! videoconvert ! videoscale ! videorate ! "$VIDEO_CAPS")
  AUDIO=("${TEST_AUDIO[@]}")
else
  # A file or an RTSP/SRT/RTMP/HTTP URL, decoded; a file is played at its
  # real speed. AUDIO=test replaces its sound with a test tone (for inputs
  # without audio).
  uri="$INPUT"
  live=()
  if [[ "$uri" != *://* ]]; then uri="file://$uri"; live=(! clocksync); fi
  SOURCE=(uridecodebin "uri=$uri" name=in in. ! queue ! videoconvert ! videoscale ! videorate
    ! "$VIDEO_CAPS" "${live[@]}")
  if [ "${AUDIO:-}" = test ]; then
    AUDIO=("${TEST_AUDIO[@]}")
  else
    AUDIO=(in. ! queue ! audioconvert ! audioresample "${live[@]}")
  fi
fi
ENDS="Ctrl-C ends it"
if [ "$DURATION" -gt 0 ] 2>/dev/null; then ENDS="$ENDS (or after ${DURATION}s)"; fi
echo "liveclip demo: source ${INPUT:-test picture}; $ENDS"
# -e: Ctrl-C (or the timeout) sends EOS, so the last clip is written and the
# session closed.
RUN=(gst-launch-1.0 -e)
if [ "$DURATION" -gt 0 ] 2>/dev/null; then RUN=(timeout --foreground -s INT "$DURATION" "${RUN[@]}"); fi
"${RUN[@]}" \
  periodicclipper name=clipper interval=10 location="$OUT/clips/clip-%05d.mp4" http-address="$HTTP" \
  hlsclipsink name=rec location="$OUT/recordings" stream-id=demo target-duration=4 http-address="$HTTP" \
    http-web-root="$OUT/site" \
  "${SOURCE[@]}" \
    ! tee name=raw ! queue \
    ! x264enc tune=zerolatency speed-preset=veryfast bitrate=2500 key-int-max=60 \
    ! h264parse ! tee name=v ! queue ! clipper.video v. ! queue ! rec.video \
    v. ! queue ! thumbnailer interval=5 width=320 location="$OUT/thumbs/thumb-%05d.jpg" \
      latest-location="$OUT/thumbs/latest.jpg" storyboard-location="$OUT/thumbs/storyboard.jpg" \
      storyboard-vtt="$OUT/thumbs/storyboard.vtt" ! fakesink \
  raw. ! queue leaky=downstream max-size-buffers=5 ! motionclipenc interval=10 duration=3 \
      location="$OUT/motion/motion-%05d.mp4" latest-location="$OUT/motion/latest.mp4" ! fakesink \
  "${AUDIO[@]}" \
    ! "$AUDIO_CAPS" ! voaacenc bitrate=128000 ! aacparse \
    ! tee name=a ! queue ! clipper.audio a. ! queue ! rec.audio || true
echo "liveclip demo: clips written:"
ls -l "$OUT/clips"
echo "liveclip demo: thumbnails: $(ls "$OUT/thumbs" | grep -c '^thumb-'), latest at $OUT/thumbs/latest.jpg"
echo "liveclip demo: motion clips: $(ls "$OUT/motion" | grep -c '^motion-'), latest at $OUT/motion/latest.mp4"
echo "liveclip demo: sessions recorded (play one with: ffplay <session>/replay.m3u8):"
ls -d "$OUT"/recordings/demo/*/
