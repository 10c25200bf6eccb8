#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Instant clips from a live recording, through hlsclipsink's action signals:
after 8 s of live video it takes a preview manifest of the last 6 s, turns
a position in that preview into a clip start (preview-start-seconds +
position), and asks for that moment as a frame-accurate MP4 and as a clip
manifest; then it clips "the last 4 s". Ends when both MP4s are written.

GST_PLUGIN_PATH=target/release python3 examples/instant_clip.py [output-dir]
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

Gst.init(None)
out = sys.argv[1] if len(sys.argv) > 1 else "instant-clip-output"
pipeline = Gst.parse_launch(
    f"hlsclipsink name=rec location={out}/recordings stream-id=cam target-duration=2 "
    "videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! timeoverlay ! "
    "x264enc tune=zerolatency key-int-max=30 ! h264parse ! queue ! rec.video "
    "audiotestsrc is-live=true ! voaacenc ! aacparse ! queue ! rec.audio"
)
rec = pipeline.get_by_name("rec")
loop = GLib.MainLoop()
pending = set()


def clip():
    # The last 6 s as a playlist, and where it starts in recording time.
    preview = rec.emit("get-preview-manifest", None, "6s")
    if preview.has_field("error"):
        print("preview refused:", preview.get_value("error"))
        loop.quit()
        return False
    start = preview.get_value("preview-start-seconds")
    media = preview.get_value("stream-media-id")
    print(f"preview of session {media} starts at {start:.3f} s")
    # A user marked 1.5 s into the preview: 2 s from there.
    moment = start + 1.5
    query = f"time={moment:.3f}&duration=2s"
    manifest = rec.emit("get-clip-manifest", media, query)
    print("clip manifest:", len(manifest.get_value("manifest").splitlines()), "lines, no new file")
    pending.add(rec.emit("clip-mp4", media, f"{query}&location={out}/moment.mp4"))
    # And simply the last 4 s recorded.
    pending.add(rec.emit("clip-mp4", None, f"duration=4s&location={out}/last-4s.mp4"))
    return False


def on_message(bus, msg):
    if msg.type == Gst.MessageType.ELEMENT:
        s = msg.get_structure()
        if s.get_name() == "hlsclipsink-clip-done" and s.get_value("request-id") in pending:
            pending.discard(s.get_value("request-id"))
            if s.has_field("error"):
                print("clip failed:", s.get_value("error"), s.get_value("status"))
            else:
                print(f"clip done: {s.get_string('location')} from {s.get_value('start') / 1e9:.3f} s, "
                      f"{s.get_value('duration') / 1e9:.3f} s, pre-roll {s.get_value('preroll') / 1e9:.3f} s")
            if not pending:
                pipeline.send_event(Gst.Event.new_eos())
    elif msg.type == Gst.MessageType.EOS:
        loop.quit()
    elif msg.type == Gst.MessageType.ERROR:
        print("error:", msg.parse_error()[0].message)
        loop.quit()


bus = pipeline.get_bus()
bus.add_signal_watch()
bus.connect("message", on_message)
pipeline.set_state(Gst.State.PLAYING)
GLib.timeout_add_seconds(8, clip)
loop.run()
pipeline.set_state(Gst.State.NULL)
