# Sourced by the live-audio test: a private PulseAudio daemon for this test only.
# pa_start DIR: starts it with everything in DIR (socket, state, config, log; HOME and
# XDG_RUNTIME_DIR point there, so no user session is touched) and two 16 kHz mono null sinks:
# "mic" (the test plays the user's voice into it; the assistant records its monitor) and
# "speaker" (the assistant plays into it; the test records its monitor). Returns 1 when the
# daemon does not come up (the reason in DIR/pulse.log). pa_stop stops it.
# As root PulseAudio only warns ("not intended to be run as root") in this per-user mode; the
# flags below keep it from needing a session bus, realtime scheduling or autospawn.
pa_start() {
  local dir=$1 i
  mkdir -p "$dir/run" "$dir/home" "$dir/state" && chmod 700 "$dir/run"
  export XDG_RUNTIME_DIR=$dir/run HOME=$dir/home PULSE_STATE_PATH=$dir/state PULSE_RUNTIME_PATH=$dir/run
  export PULSE_SERVER=unix:$dir/run/native PULSE_CLIENTCONFIG=$dir/client.conf
  printf 'autospawn = no\n' > "$dir/client.conf"
  cat > "$dir/default.pa" <<PA
load-module module-native-protocol-unix socket=$dir/run/native auth-anonymous=1
load-module module-null-sink sink_name=mic rate=16000 channels=1 sink_properties=device.description=mic
load-module module-null-sink sink_name=speaker rate=16000 channels=1 sink_properties=device.description=speaker
PA
  pulseaudio -n -F "$dir/default.pa" --daemonize=no --exit-idle-time=120 --use-pid-file=no \
    --disallow-exit=no --high-priority=no --realtime=no --system=no --disable-shm=yes \
    --log-target=file:"$dir/pulse.log" --log-level=info > /dev/null 2>&1 &
  PA_PID=$!
  for i in $(seq 50); do
    pactl info > /dev/null 2>&1 && return 0
    kill -0 "$PA_PID" 2> /dev/null || return 1
    sleep 0.2
  done
  return 1
}
pa_stop() {
  [ -n "${PA_PID:-}" ] || return 0
  kill "$PA_PID" 2> /dev/null
  wait "$PA_PID" 2> /dev/null
  PA_PID=""
}
