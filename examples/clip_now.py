#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""A live pipeline into periodicclipper, with on-demand clips from the
clip-now action signal every 4 s; stops after 3 clips.

GST_PLUGIN_PATH=target/release python3 examples/clip_now.py [output-dir]
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

Gst.init(None)
out = sys.argv[1] if len(sys.argv) > 1 else "clip-now-output"
pipeline = Gst.parse_launch(
    f"periodicclipper name=c interval=0 location={out}/moment-%03d.mp4 "
    "videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! timeoverlay ! "
    "x264enc tune=zerolatency key-int-max=300 ! h264parse ! queue ! c.video "
    "audiotestsrc is-live=true ! voaacenc ! aacparse ! queue ! c.audio"
)
clipper = pipeline.get_by_name("c")
loop = GLib.MainLoop()
asked = 0


def ask():
    global asked
    asked += 1
    print("asked for a clip:", clipper.emit("clip-now"))
    if asked == 3:
        pipeline.send_event(Gst.Event.new_eos())
        return False
    return True


def on_message(bus, msg):
    if msg.type == Gst.MessageType.ELEMENT:
        s = msg.get_structure()
        if s.get_name() == "periodicclipper-clip-ready":
            print("clip ready:", s.get_string("location"), s.get_string("trigger"),
                  s.get_value("video-frames"), "video frames")
    elif msg.type == Gst.MessageType.EOS:
        loop.quit()
    elif msg.type == Gst.MessageType.ERROR:
        print("error:", msg.parse_error()[0].message)
        loop.quit()


bus = pipeline.get_bus()
bus.add_signal_watch()
bus.connect("message", on_message)
pipeline.set_state(Gst.State.PLAYING)
GLib.timeout_add_seconds(4, ask)
loop.run()
pipeline.set_state(Gst.State.NULL)
