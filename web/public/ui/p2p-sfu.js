// Peer-to-peer for two, the SFU's side of a switch (ui/p2p.js decides
// when): pausing and resuming what we send to the SFU, and noticing when
// what the SFU sends us of the peer decodes again.

import { local } from './devices.js';

/** @typedef {import('./peer.js').Session} Session */

/** How often the direct and SFU paths are checked for decoded media, in ms. */
export const POLL_MS = 200;

/**
 * Decoded frames a path must show before the tile switches to it: the
 * first frames after a path opens come slowly (a keyframe, the encoder
 * ramping up), and switching on the first one froze the tile for up to
 * half a second more.
 */
export const FRAMES_BEFORE_SWITCH = 5;

/**
 * Decoded video frames and audio packets of a peer connection's inbound
 * streams whose `mid` passes `wanted`.
 * @param {RTCPeerConnection} pc
 * @param {(mid: string) => boolean} wanted
 */
export async function received(pc, wanted) {
  let frames = 0;
  let audioPackets = 0;
  try {
    (await pc.getStats()).forEach((r) => {
      if (r.type !== 'inbound-rtp' || !wanted(r.mid ?? '')) return;
      if (r.kind === 'video') frames += r.framesDecoded ?? 0;
      else audioPackets += r.packetsReceived ?? 0;
    });
  } catch {
    // Closed meanwhile.
  }
  return { frames, audioPackets };
}

/**
 * Calls `done` once, when the SFU's video of `stream` decodes `FRAMES_BEFORE_SWITCH` new frames
 * (its audio, when `cameraOff()`): the moment the direct path may close.
 * @param {() => RTCPeerConnection | null} pcOf The SFU connection now.
 * @param {string} stream The peer's participant id.
 * @param {() => boolean} cameraOff
 * @param {() => void} done
 * @returns {() => void} Stops watching.
 */
export function watchDecodes(pcOf, stream, cameraOff, done) {
  /** @type {{frames: number, audioPackets: number} | null} */
  let base = null;
  let stopped = false;
  const tick = async () => {
    const pc = pcOf();
    if (!pc || stopped) return;
    const mids = midsOf(pc, stream);
    const now = await received(pc, (mid) => mids.has(mid));
    if (stopped) return;
    if (!base) {
      base = now;
      return;
    }
    if (now.frames >= base.frames + FRAMES_BEFORE_SWITCH || (cameraOff() && now.audioPackets > base.audioPackets)) {
      stop();
      done();
    }
  };
  const timer = setInterval(() => void tick(), POLL_MS);
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  void tick();
  return stop;
}

/**
 * The `mid`s of the SFU connection's sections that carry `stream` (the
 * `a=msid` stream id is the publisher's participant id).
 * @param {RTCPeerConnection} pc
 * @param {string} stream
 */
function midsOf(pc, stream) {
  const mids = new Set();
  const sdp = pc.remoteDescription?.sdp ?? '';
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section);
    const msid = /^a=msid:(\S+)/m.exec(section);
    if (mid && msid && msid[1] === stream) mids.add(mid[1]);
  }
  return mids;
}

/**
 * Sends our media to the SFU, or stops (the senders stay, with no track,
 * so resuming is a `replaceTrack` and not a renegotiation).
 * @param {Session} s
 * @param {boolean} on
 */
export function setSfuSending(s, on) {
  s.sfuPaused = !on;
  for (const [sender, source] of s.sources) {
    let track = null;
    if (on) {
      if (source === 'microphone') track = local.mic;
      else if (source === 'camera') track = local.cam;
      else if (source === 'screen') track = local.screen?.getVideoTracks()[0] ?? null;
      else track = local.screen?.getAudioTracks()[0] ?? null;
    }
    if (sender.track !== track) sender.replaceTrack(track).catch((e) => console.warn('veche: replaceTrack failed', e));
  }
}
