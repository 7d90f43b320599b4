#!/usr/bin/python3
"""voice-chat.py: the AnyGPT voice assistant as a media app builds it, with PyGObject.

The pipeline is pipelines/voice-assistant.sh's (speechtokenize -> anygptllm task=chat ->
soundstorm -> encodecdecode), made with Gst.parse_launch. The app listens to the bus:
  reply N: TEXT            every answer (anygptllm message; modality spans left out)
  latency N: S s           end of the user's speech -> first reply audio (speechtokenize's
                           message time minus its encode time, to encodecdecode's message)
  dropped N                an utterance half-duplex turn taking dropped (anygptllm-dropped)
  interrupted N            a reply cut by barge-in (its message says cancelled)
  set N: PROP=VALUE        a property changed while running (--after-turn, or typed commands)
  error: ...               a GStreamer error (exit status 1)
(--messages FILE writes every element message too: prompts, replies, timings.)
and changes anygptllm's duplex / history while it runs: --after-turn N PROP=VALUE (applied when
reply N is posted, before the next turn starts: the bus's sync handler runs in the element's
thread), or typed on stdin when it is a terminal: "duplex barge-in", "history 0".

Needs python3-gi and gir1.2-gstreamer-1.0 (tools/setup-deps.sh); the anygpt plugin on
GST_PLUGIN_PATH or installed. Example:
  pipelines/apps/voice-chat.py --models ~/anygpt                     # microphone, speakers
  pipelines/apps/voice-chat.py --models DIR -i question.wav -o reply.wav --after-turn 1 history=0
"""
import argparse
import os
import re
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

SPAN = re.compile(r"<so(sp|im|mu)>.*?(?:<eo\1>|$)", re.S)
TAG = re.compile(r"\[Human\]|\[MMGPT\]|<eoh>|<eos>|<eom>|<-Ins->|<-Res->|<eot>|<[^<>\s]*?\d+>")
SETTABLE = {"duplex", "history"}


def reply_text(reply):
    """The words of a reply: speech / image / music spans and role tags left out."""
    return " ".join(TAG.sub("", SPAN.sub("", reply)).split())


def pipeline_description(a):
    models = a.models or os.environ.get("ANYGPT_MODELS", "")
    path = lambda opt, env, name: opt or os.environ.get(env) or (models and os.path.join(models, name))
    llm = path(a.llm, "ANYGPT_LLM", "anygpt-llm.gguf")
    st = path(a.speechtokenizer, "ANYGPT_SPEECHTOKENIZER", "speechtokenizer.gguf")
    ss = path(a.soundstorm, "ANYGPT_SOUNDSTORM", "soundstorm.gguf")
    if not (llm and st and ss):
        sys.exit("error: no models: pass --models DIR or set ANYGPT_MODELS (see README.md)")
    q = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if a.input:
        src = "filesrc location=%s ! decodebin" % q(a.input)
    else:
        src = a.source
    if a.output:
        sink = "audioconvert ! audio/x-raw,format=S16LE ! wavenc ! filesink location=%s" % q(a.output)
    else:
        sink = "audioconvert ! audioresample ! %s" % a.sink
    extra = " seed=%d" % a.seed if a.seed is not None else ""
    return (
        f"{src} ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=16000,channels=1 ! "
        f"speechtokenize name=tok model-path={q(st)} device={a.device} segment={a.segment} ! llm.tokens_sink_0 "
        f"anygptllm name=llm model-path={q(llm)} device={a.device} task=chat history={a.history} "
        f"speech-reply=always constrain-spans=true duplex={a.duplex} max-new-tokens={a.max_new_tokens}{extra} "
        f"llm.text_src ! queue max-size-buffers=2048 max-size-bytes=0 max-size-time=0 ! fakesink sync=false async=false "
        f"llm.speech_src ! queue max-size-buffers=8 max-size-bytes=0 max-size-time=0 ! soundstorm model-path={q(ss)} device={a.device} ! "
        f"encodecdecode name=dec model-path={q(st)} device={a.device} ! {sink}")


class VoiceChat:
    def __init__(self, args):
        self.args = args
        self.pipeline = Gst.parse_launch(pipeline_description(args))
        self.llm = self.pipeline.get_by_name("llm")
        self.loop = GLib.MainLoop()
        self.status = 0
        self.messages = open(args.messages, "w") if args.messages else None
        self.turn = 0           # utterances the tokenizer cut
        self.replies = 0
        self.sync_replies = 0
        self.audio = 0          # reply audio items decoded
        self.speech_end = {}    # turn -> monotonic ns of the end of its speech
        self.pending = {}       # reply number -> [(prop, value)] (--after-turn)
        for n, setting in args.after_turn or []:
            self.pending.setdefault(n, []).append(setting)
        bus = self.pipeline.get_bus()
        # element messages in the posting thread: a change after reply N lands before turn N+1
        bus.enable_sync_message_emission()
        bus.connect("sync-message::element", self.on_sync_element)
        bus.add_signal_watch()
        bus.connect("message", self.on_message)

    def say(self, line):
        print(line, flush=True)

    def set(self, prop, value, turn):
        if prop not in SETTABLE:
            self.say("error: only %s can be changed while running" % ", ".join(sorted(SETTABLE)))
            return
        if prop == "history":
            value = int(value)
        self.llm.set_property(prop, value)
        shown = self.llm.get_property(prop)
        shown = shown.value_nick if hasattr(shown, "value_nick") else shown
        self.say("set %d: %s=%s" % (turn, prop, shown))

    def on_sync_element(self, bus, msg):
        # the element's thread: counts replies on its own (the main loop sees them later)
        if msg.get_structure().get_name() == "anygptllm":
            self.sync_replies += 1
            for setting in self.pending.pop(self.sync_replies, []):
                self.set(*setting.split("=", 1), self.sync_replies)

    def on_message(self, bus, msg):
        t = msg.type
        if t == Gst.MessageType.ELEMENT:
            self.on_element(msg.get_structure())
        elif t == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            print("error: %s: %s%s" % (msg.src.get_name(), err.message, " (%s)" % dbg if dbg else ""),
                  file=sys.stderr, flush=True)
            self.status = 1
            self.loop.quit()
        elif t == Gst.MessageType.WARNING:
            err, _ = msg.parse_warning()
            print("warning: %s: %s" % (msg.src.get_name(), err.message), file=sys.stderr, flush=True)
        elif t == Gst.MessageType.EOS:
            self.loop.quit()

    def on_element(self, s):
        name, now = s.get_name(), GLib.get_monotonic_time() * 1000
        if self.messages:
            self.messages.write(s.to_string() + "\n")
            self.messages.flush()
        if name == "speechtokenize":
            self.turn += 1
            ok, enc = s.get_uint64("encode-time")
            self.speech_end[self.turn] = now - (enc if ok else 0)
        elif name == "anygptllm-dropped":
            self.say("dropped %d" % self.turn)
            self.speech_end.pop(self.turn, None)    # no audio will answer it
        elif name == "anygptllm":
            self.replies += 1
            _, cancelled = s.get_boolean("cancelled")
            if cancelled:
                self.say("interrupted %d" % self.replies)
            self.say("reply %d: %s" % (self.replies, reply_text(s.get_string("reply") or "")))
        elif name == "encodecdecode":
            self.audio += 1
            # the first audio of the turn this reply answers: the oldest speech end not yet used
            if self.speech_end:
                turn = min(self.speech_end)
                self.say("latency %d: %.3f s" % (turn, (now - self.speech_end.pop(turn)) / 1e9))

    def on_stdin(self, source, cond):
        line = sys.stdin.readline()
        if not line:
            return False
        words = line.split()
        if len(words) == 2:
            self.set(words[0], words[1], self.replies)
        elif words:
            self.say('commands: "duplex half|barge-in|queue", "history N"')
        return True

    def run(self):
        if sys.stdin.isatty():
            GLib.io_add_watch(sys.stdin, GLib.IO_IN, self.on_stdin)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 2, self.on_interrupt)
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self.status = 1
            self.drain_errors()
        else:
            self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        self.pipeline.get_bus().remove_signal_watch()
        return self.status

    def drain_errors(self):
        bus = self.pipeline.get_bus()
        msg = bus.timed_pop_filtered(0, Gst.MessageType.ERROR)
        while msg:
            self.on_message(bus, msg)
            msg = bus.timed_pop_filtered(0, Gst.MessageType.ERROR)

    def on_interrupt(self):
        # Ctrl-C: finish cleanly (EOS through the pipeline ends the WAV properly)
        self.pipeline.send_event(Gst.Event.new_eos())
        return False


def after_turn(text):
    n, _, setting = text.partition(":")
    if not n.isdigit() or "=" not in setting:
        raise argparse.ArgumentTypeError("want N:PROP=VALUE, e.g. 1:history=0")
    return int(n), setting


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--input", help="audio file instead of the microphone")
    p.add_argument("--source", default="autoaudiosrc",
                   help="live source description (default autoaudiosrc; e.g. 'pulsesrc device=NAME')")
    p.add_argument("-o", "--output", help="write the reply audio to a WAV instead of playing it")
    p.add_argument("--sink", default="autoaudiosink", help="audio sink description")
    p.add_argument("--models", help="models folder with the standard names ($ANYGPT_MODELS)")
    p.add_argument("--llm"), p.add_argument("--speechtokenizer"), p.add_argument("--soundstorm")
    p.add_argument("-d", "--device", default="auto", help="auto | cpu | vulkan")
    p.add_argument("--duplex", help="half | barge-in | queue (default: half live, queue for -i)")
    p.add_argument("--history", type=int, default=4, help="previous turns in the prompt (default 4)")
    p.add_argument("--segment", default="vad", help="speechtokenize segment mode (vad | meta)")
    p.add_argument("-n", "--max-new-tokens", type=int, default=500)
    p.add_argument("-s", "--seed", type=int)
    p.add_argument("--messages", help="write every element message to this file")
    p.add_argument("--after-turn", type=after_turn, action="append", metavar="N:PROP=VALUE",
                   help="set duplex or history when reply N is posted (repeatable)")
    a = p.parse_args()
    a.duplex = a.duplex or ("queue" if a.input else "half")
    if a.input and not os.path.isfile(a.input):
        sys.exit("error: input file '%s' not found" % a.input)
    Gst.init(None)
    try:
        app = VoiceChat(a)
    except GLib.Error as e:
        sys.exit("error: %s" % e.message)
    sys.exit(app.run())


if __name__ == "__main__":
    main()
