#!/usr/bin/env python3
"""The voice pipeline started and stopped as a new user of the bindings would: every cycle a new
pipeline from Gst.parse_launch (the voice assistant's elements on the demo models, a WAV file as
the microphone), PLAYING, stopped (NULL) after a random 0.1-3 s, dropped. Prints every 10 cycles
VmRSS (anonymous and file-backed parts), the heap in use (glibc mallinfo2: what malloc handed out
and was not freed), the heap malloc holds (its arenas and mmapped chunks), the threads and the
mappings, so a leak (the heap in use grows) can be told from memory malloc keeps (held grows, in
use does not) and from memory outside malloc (RssAnon grows, held does not).

usage: /usr/bin/python3 tools/voice-cycles.py MODELS_DIR INPUT.wav [CYCLES (100)] [SEED (1)]
Environment: GST_PLUGIN_PATH pointing at the build's gst/ folder (or the plugin installed);
GST_TRACERS=leaks GST_DEBUG=GST_TRACER:7 lists the GStreamer objects left at the end.
Needs PyGObject with GStreamer's introspection data (Debian: python3-gi, gir1.2-gstreamer-1.0).
"""
import ctypes
import gc
import random
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]


libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2


def status():
    """VmRSS, RssAnon, RssFile (kB) and Threads from /proc/self/status; mappings from maps."""
    v = {}
    for line in open("/proc/self/status"):
        k, _, rest = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            v[k] = int(rest.split()[0])
    v["maps"] = sum(1 for _ in open("/proc/self/maps"))
    return v


def heap():
    """In use (malloc'd, not freed) and held by malloc (arenas + mmapped chunks), kB."""
    mi = libc.mallinfo2()
    return (mi.uordblks + mi.hblkhd) // 1024, (mi.arena + mi.hblkhd) // 1024


def description(models, wav):
    m = models.rstrip("/") + "/"
    return (f"filesrc location={wav} ! decodebin ! audioconvert ! audioresample ! "
            "audio/x-raw,format=F32LE,rate=16000,channels=1 ! "
            f"speechtokenize model-path={m}speechtokenizer.gguf device=cpu segment=vad ! "
            "llm.tokens_sink_0 "
            f"anygptllm name=llm model-path={m}anygpt-llm.gguf device=cpu task=chat "
            "speech-reply=always constrain-spans=true duplex=queue max-new-tokens=80 "
            "llm.text_src ! queue max-size-buffers=2048 max-size-bytes=0 max-size-time=0 ! "
            "fakesink sync=false async=false "
            f"llm.speech_src ! soundstorm model-path={m}soundstorm.gguf device=cpu ! "
            f"encodecdecode model-path={m}speechtokenizer.gguf device=cpu ! audioconvert ! "
            "fakesink sync=false")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    models, wav = sys.argv[1], sys.argv[2]
    cycles = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    Gst.init(None)
    desc = description(models, wav)
    errors = 0
    print("cycle  VmRSS_kB RssAnon_kB RssFile_kB heap_in_use_kB heap_held_kB threads maps")
    for i in range(1, cycles + 1):
        pipe = Gst.parse_launch(desc)
        bus = pipe.get_bus()
        pipe.set_state(Gst.State.PLAYING)
        end = time.monotonic() + rng.uniform(0.1, 3.0)
        while time.monotonic() < end:
            msg = bus.timed_pop_filtered(50 * Gst.MSECOND, Gst.MessageType.ERROR | Gst.MessageType.EOS)
            if msg and msg.type == Gst.MessageType.ERROR:
                errors += 1
                print("error:", msg.parse_error()[0].message, file=sys.stderr)
                break
            if msg:
                break
        if pipe.set_state(Gst.State.NULL) == Gst.StateChangeReturn.FAILURE:
            errors += 1
        del bus, pipe
        if i % 10 == 0 or i == 1:
            st, (used, held) = status(), heap()
            print(f"{i:5d} {st['VmRSS']:9d} {st['RssAnon']:10d} {st['RssFile']:10d} {used:14d} "
                  f"{held:12d} {st['Threads']:7d} {st['maps']:4d}", flush=True)
    print(f"errors: {errors}")
    gc.collect()
    Gst.deinit()  # GST_TRACERS=leaks lists the GStreamer objects still alive here
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
