// When to restart ICE on the media connection, with no DOM, no peer
// connection and no clock of its own: the shell (ui/peer.js) feeds it the
// connection's ICE states and timer expiries with the current time, and runs
// what it answers (restart ICE, set or cancel its one timer, give up).
//
// Why: a laptop that moves from Wi-Fi to a phone hotspot, or a network that
// drops the path the call was using, leaves ICE `disconnected` and then
// `failed`. Rejoining would cost a new peer connection and a visible gap;
// an ICE restart over the same signalling socket (a new offer with fresh
// ICE credentials, which the node answers as a renegotiation) keeps the
// seat, the tracks and the other participants' view unchanged. Only when
// restarts do not bring the connection back does the call fall back to its
// rejoin (which others see as "reconnecting", never a leave).
//
// When the signalling socket dropped too, the seat is resumed on a new
// socket first; the resume keeps this peer connection (`keep_media`), and
// the negotiator restarts ICE on it at once (`Negotiator.resume`), with no
// decision needed from here.

/** How long ICE may stay `disconnected` before a restart: Chromium goes
 * `disconnected` after ~2.5 s without replies, and often recovers alone
 * from a brief loss, so wait a little more before renegotiating. */
export const ICE_DISCONNECTED_GRACE_MS = 1500;
/** How long one restart may take to reconnect before the next attempt. */
export const ICE_RESTART_TIMEOUT_MS = 5000;
/** Restarts in a row without reconnecting, before giving up (rejoin). */
export const MAX_ICE_RESTARTS = 2;
/** How often the shell samples the packets received, for `stall`. */
export const INBOUND_SAMPLE_MS = 250;
/** Media that was flowing and stops for this long is a broken path.
 * Chromium itself says `disconnected` only after ~5 s without packets
 * when the address it used disappears (a network change), and the seat's
 * resume starts only after that. */
export const INBOUND_STALL_MS = 750;
/** A stall this long, with the signalling socket answering, restarts ICE.
 * Long enough that a receiver whose sender resumed its seat elsewhere gets
 * the new track first (a needless restart then would cross the node's
 * offer for it and delay the video by seconds). */
export const INBOUND_RESTART_MS = 5000;
/** How long the signalling socket may take to answer a probe once the
 * media path broke (a ping's round trip, even on a slow mobile link). A network change usually kills the socket too (it is
 * bound to the old address); waiting for three missed keepalives (15 s)
 * would keep the call frozen that long before the seat is resumed. */
export const SIGNAL_PROBE_MS = 1000;

/**
 * @typedef {{type: 'ice_state', state: string}
 *   | {type: 'timer'}
 *   | {type: 'local_candidate', candidateType: string | null, address: string | null}
 *   | {type: 'inbound', packets: number}
 *   | {type: 'network_change'}
 *   | {type: 'restarting'}} IceEvent
 * `ice_state`: the peer connection's `iceConnectionState` (or `failed` from
 * its `connectionState`). `local_candidate`: the browser gathered a local
 * candidate (Chromium gathers continually, so an address that appears
 * while connected is a new network). `network_change`: the browser reports
 * new interfaces (the `online` event). `inbound`: RTP packets received so
 * far on the connection (sampled every `INBOUND_SAMPLE_MS`). `restarting`:
 * the shell restarted ICE itself (a resumed seat took its connection
 * back), so the host candidates that restart gathers are no new network
 * to restart for again, and the restart gets its timer like one of ours.
 */

/**
 * `probe_signalling`: check the signalling socket now (`Signalling.probe`),
 * since the restart's offer travels on it.
 * @typedef {{type: 'restart'}
 *   | {type: 'probe_signalling', ms: number}
 *   | {type: 'set_timer', ms: number}
 *   | {type: 'cancel_timer'}
 *   | {type: 'give_up'}} IceAction
 */

/**
 * The decision for one peer connection. States: `new` (never connected),
 * `up`, `disconnected` (grace timer running), `restarting` (restart timer
 * running), `gone` (gave up, or closed).
 */
export class IceRestart {
  constructor() {
    /** @type {'new' | 'up' | 'disconnected' | 'restarting' | 'gone'} */
    this.phase = 'new';
    /** Restarts since the connection was last up. */
    this.attempts = 0;
    /** Restarts over the connection's life, for tests and stats. */
    this.restarts = 0;
    /** When the connection last went down, for the time a recovery took. */
    /** @type {number | null} */
    this.downSince = null;
    /** How long the last recovery took, in ms (down → up). */
    /** @type {number | null} */
    this.lastRecoveryMs = null;
    /** Addresses of the host candidates gathered so far. */
    /** @type {Set<string>} */
    this.hostAddresses = new Set();
    /** Packets received at the last sample, and when they last grew. */
    this.packets = 0;
    /** @type {number | null} */
    this.grewAt = null;
    /** Samples in a row in which packets grew: media is flowing. */
    this.growing = 0;
    /** How far the current stall got: probed the socket, restarted ICE. */
    /** @type {'none' | 'probed' | 'restarted'} */
    this.stall = 'none';
  }

  /**
   * @param {IceEvent} ev
   * @param {number} now Milliseconds; only differences count.
   * @returns {IceAction[]}
   */
  handle(ev, now) {
    if (this.phase === 'gone') return [];
    if (ev.type === 'ice_state') return this.iceState(ev.state, now);
    if (ev.type === 'timer') return this.timer(now);
    if (ev.type === 'inbound') return this.inbound(ev.packets, now);
    if (ev.type === 'restarting') return this.restartedElsewhere(now);
    if (ev.type === 'local_candidate') {
      // Only a host address that was not there before is a new network;
      // a relayed or reflexive candidate may simply arrive late.
      if (ev.candidateType !== 'host' || !ev.address || this.hostAddresses.has(ev.address)) return [];
      this.hostAddresses.add(ev.address);
      if (this.phase !== 'up' && this.phase !== 'disconnected') return [];
    }
    // New interfaces: the old path may be gone already, so do not wait
    // for ICE to notice.
    if (this.phase === 'up' || this.phase === 'disconnected') return this.restart(now);
    return [];
  }

  /**
   * @param {string} state
   * @param {number} now
   * @returns {IceAction[]}
   */
  iceState(state, now) {
    switch (state) {
      case 'connected':
      case 'completed':
        return this.recovered(now);
      case 'disconnected':
        if (this.phase !== 'up') return [];
        this.phase = 'disconnected';
        this.downSince = now;
        return [
          { type: 'set_timer', ms: ICE_DISCONNECTED_GRACE_MS },
          { type: 'probe_signalling', ms: SIGNAL_PROBE_MS },
        ];
      case 'failed':
        // Never connected: restarting will not find a path the first
        // attempt could not; the call's media timer decides.
        if (this.phase === 'new') return [];
        // A restart under way reports the old generation's failure too;
        // its own timer decides.
        if (this.phase === 'restarting') return [];
        if (this.downSince === null) this.downSince = now;
        return [{ type: 'cancel_timer' }, ...this.restart(now)];
      case 'closed':
        this.phase = 'gone';
        return [{ type: 'cancel_timer' }];
      default:
        return [];
    }
  }

  /**
   * A stall of media that was flowing. First the signalling socket is
   * checked at once instead of waiting seconds for the browser to call the
   * path disconnected: if our own network changed, the socket died with it
   * and the probe's failure resumes the seat. If the socket answers and
   * media is still stalled `INBOUND_RESTART_MS` after the last packet, ICE
   * is restarted: Chromium may have moved its side to a backup pair (a
   * relay) without ever leaving `connected`, while the node, the
   * controlled agent, keeps sending on the nominated pair that died; only
   * a restart makes both sides agree again. The stall may also be the
   * sender's (a participant whose network changed, or who left); the
   * restart is then needless but harmless.
   * @param {number} packets
   * @param {number} now
   * @returns {IceAction[]}
   */
  inbound(packets, now) {
    if (packets > this.packets) {
      this.packets = packets;
      this.grewAt = now;
      this.growing += 1;
      this.stall = 'none';
      // Media flows again after a restart: it worked, even though ICE may
      // never have left `connected` (so no state change says so), and the
      // next break must be noticed as a stall again.
      if (this.phase === 'restarting' && this.growing >= 2) return this.recovered(now);
      return [];
    }
    this.packets = packets;
    if (this.growing < 2 || this.grewAt === null || this.phase !== 'up') return [];
    const quiet = now - this.grewAt;
    if (this.stall === 'none' && quiet >= INBOUND_STALL_MS) {
      this.stall = 'probed';
      return [{ type: 'probe_signalling', ms: SIGNAL_PROBE_MS }];
    }
    if (this.stall === 'probed' && quiet >= INBOUND_RESTART_MS) {
      this.stall = 'restarted';
      this.growing = 0;
      this.downSince = this.grewAt;
      return [{ type: 'cancel_timer' }, ...this.restart(now)];
    }
    return [];
  }

  /**
   * @param {number} now
   * @returns {IceAction[]}
   */
  timer(now) {
    if (this.phase === 'disconnected' || this.phase === 'restarting') return this.restart(now);
    return [];
  }

  /**
   * The connection is up (again).
   * @param {number} now
   * @returns {IceAction[]}
   */
  recovered(now) {
    const was = this.phase;
    this.phase = 'up';
    this.attempts = 0;
    if (this.downSince !== null) this.lastRecoveryMs = now - this.downSince;
    this.downSince = null;
    return was === 'disconnected' || was === 'restarting' ? [{ type: 'cancel_timer' }] : [];
  }

  /**
   * A restart the shell made: wait for it as for one of ours (a second
   * restart on its gathered candidates would only cross it).
   * @param {number} now
   * @returns {IceAction[]}
   */
  restartedElsewhere(now) {
    if (this.phase === 'new') return [];
    if (this.downSince === null) this.downSince = now;
    this.restarts += 1;
    this.phase = 'restarting';
    this.stall = 'none';
    this.growing = 0;
    return [{ type: 'set_timer', ms: ICE_RESTART_TIMEOUT_MS }];
  }

  /**
   * @param {number} now
   * @returns {IceAction[]}
   */
  restart(now) {
    if (this.attempts >= MAX_ICE_RESTARTS) {
      this.phase = 'gone';
      return [{ type: 'give_up' }];
    }
    if (this.downSince === null) this.downSince = now;
    this.attempts += 1;
    this.restarts += 1;
    this.phase = 'restarting';
    return [
      { type: 'restart' },
      { type: 'set_timer', ms: ICE_RESTART_TIMEOUT_MS },
      { type: 'probe_signalling', ms: SIGNAL_PROBE_MS },
    ];
  }
}
