#!/usr/bin/env bash
# Installs what liveclip needs on Debian/Ubuntu, when it is missing:
# GStreamer (1.20+) with the good/bad/ugly/libav plugins and pango (the
# demo's clock overlay), ffmpeg (the tests' independent reader), and a Rust
# toolchain if there is none.
set -euo pipefail

PKGS=(
  pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-x
  ffmpeg python3-gst-1.0 chromium meson ninja-build procps
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "liveclip: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# hls.js, Shaka Player and video.js for the browser playback checks
# (web/package-lock.json pins them).
if ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$here/web/node_modules/hls.js/dist/hls.min.js" ] \
  || [ ! -f "$here/web/node_modules/shaka-player/dist/shaka-player.compiled.js" ] \
  || [ ! -f "$here/web/node_modules/video.js/dist/video.min.js" ]; then
  (cd "$here/web" && npm ci --no-audit --no-fund --silent)
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    :
  else
    echo "liveclip: installing the Rust toolchain (rustup)"
    command -v curl >/dev/null 2>&1 || { SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo; $SUDO apt-get install -y -qq curl >/dev/null; }
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy -c rustfmt >/dev/null
  fi
fi
