#!/bin/sh
# Regenerates the synthetic media clips embedded by veche-loadtest (src/media/*.rs).
# See README.md for what each option is for. Run from this directory.
set -eu

# VP8: 2 s (60 frames) of testsrc2 at 30 fps, keyframes at frames 0 and 30, with the
# bitstream features a WebRTC encoder uses (no alt-ref/invisible frames, no lookahead,
# error resilient). `-deadline good` rather than `realtime` makes the output reproducible.
vp8() { # $1 = bitrate in kbps, $2 = WIDTHxHEIGHT
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$2:rate=30" -frames:v 60 \
    -c:v libvpx -deadline good -cpu-used 5 \
    -b:v "$1k" -minrate "$1k" -maxrate "$1k" -bufsize "$1k" \
    -g 30 -keyint_min 30 -force_key_frames 'expr:eq(mod(n,30),0)' \
    -auto-alt-ref 0 -lag-in-frames 0 -error-resilient 1 -threads 1 \
    -f ivf "vp8_$2_$1k.ivf"
}
vp8 500 640x360
vp8 1500 1280x720
vp8 2500 1280x720

# Opus: 2 s of a 440 Hz tone, mono 48 kHz, constant 32 kbps in 20 ms frames (80-byte packets).
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=2" \
  -c:a libopus -b:a 32k -vbr off -application voip -frame_duration 20 -ac 1 \
  -fflags +bitexact -flags:a +bitexact -map_metadata -1 \
  -f ogg opus_48k_mono_32k.ogg
