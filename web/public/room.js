// Veche room page: the entry point. It wires the views (ui/) to the call
// shell (ui/call.js), which runs the DOM-free call core (lib/call-core.js).
// Module map: docs/architecture.md, "Web client".

import * as proto from './protocol.js';
import { $, showMessage, showScreen, setBanner, storageGet, toast } from './ui/dom.js';
import { app } from './ui/state.js';
import { deviceHooks, local, startMic, startCam, stopLocalMedia, refreshDevices, chooseMic, chooseCam } from './ui/devices.js';
import { prejoinHooks, refuseUnencryptableBrowser, showPrejoin, onPrejoinSubmit, renderPreview, renderDeviceErrors, NAME_KEY } from './ui/prejoin.js';
import { remote, renderTiles, layoutTiles } from './ui/stage.js';
import { renderParticipants } from './ui/participants.js';
import { chatHooks, loadOlder, renderChatMeta, sendChat, showChatError, updateCounter } from './ui/chat-view.js';
import { controlHooks, panels, copyLink, renderControls, renderPanels, setPanel, toggleCam, toggleMic, toggleScreen } from './ui/controls.js';
import { callHooks, currentSession, dispatch, leaveCall, sendMediaState, sendTarget, startCall as startCallCore } from './ui/call.js';
import { addScreenSenders, attachSendTrack, detachCam, removeScreenSenders } from './ui/peer.js';
import { p2pTracksChanged } from './ui/p2p.js';
import { fetchSignedIn, renderIdentity, showRefusalIfAny, storedOwnerKey, wirePasses } from './ui/passes.js';
import { modHooks } from './ui/moderation-hooks.js';
import { closeMenu, wireModerationMenu } from './ui/moderation-menu.js';
import { renderHostControls, wireMeetingSettings } from './ui/meeting-settings.js';
import { lobby, leaveWaiting, onLobby, renderLobby, showWaiting } from './ui/lobby.js';
import { renderHands, toggleHand } from './ui/hand.js';
import { followPolicy, guarded, onModerated, renderSelfLimits, resetSelfModeration, selfModeration, wireSelfModeration } from './ui/moderation-self.js';
import { wireCover } from './ui/cover.js';
import { renderRecording, resetRecording, showRecordingLinks, wireRecording } from './ui/recording-room.js';
import { e2eeActive, onE2eeSignal, sendSealedChat, startE2ee, stopE2ee } from './ui/e2ee.js';
import { wireSecurity } from './ui/security.js';
import { UNSUPPORTED_TEXT } from './lib/e2ee-status.js';

/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').NodeId} NodeId */

function renderAll() {
  if (app.connected) leaveWaiting();
  renderTiles();
  renderParticipants();
  renderControls();
  renderPanels();
  renderChatMeta();
  renderModeration();
  followPolicy().catch((e) => console.error(e));
}

/** Renders everything that depends on local devices. */
function renderLocal() {
  renderControls();
  renderTiles();
  renderPreview();
  renderDeviceErrors();
  renderSelfLimits();
  renderHands();
}

/** Roles, hands, the lobby, recording and what the policy allows (ui/moderation-*.js, lobby.js, hand.js, recording-room.js). */
function renderModeration() {
  renderHands();
  renderSelfLimits();
  renderHostControls();
  renderLobby();
  renderRecording();
}

// The views reach the call only through these hooks (see each module).
deviceHooks.attach = (source, track) => attachSendTrack(currentSession(), source, track).finally(p2pTracksChanged);
deviceHooks.camOff = () => detachCam(currentSession()).finally(p2pTracksChanged);
deviceHooks.changed = () => {
  sendMediaState();
  renderLocal();
};
deviceHooks.errors = renderDeviceErrors;
controlHooks.changed = deviceHooks.changed;
controlHooks.addScreen = (stream) => {
  const s = currentSession();
  if (s) addScreenSenders(s, stream);
  p2pTracksChanged();
};
controlHooks.removeScreen = () => {
  const s = currentSession();
  if (s) removeScreenSenders(s);
  p2pTracksChanged();
};
/** @type {(text: string, clientMsgId: string) => void} */
const sendChatNow = (text, clientMsgId) => dispatch({ type: 'chat', text, clientMsgId });
// Encrypted rooms seal chat first (ui/e2ee.js).
chatHooks.send = (text, clientMsgId) => (e2eeActive() ? void sendSealedChat(text, clientMsgId, sendChatNow) : sendChatNow(text, clientMsgId));
chatHooks.currentSession = sendTarget;
prejoinHooks.renderLocal = renderLocal;
prejoinHooks.join = startCall;
callHooks.render = renderAll;
callHooks.ended = ended;
callHooks.moderated = (m) => {
  onModerated(m).catch((e) => console.error(e));
};
callHooks.lobby = onLobby;
callHooks.e2ee = onE2eeSignal;
callHooks.waiting = showWaiting;
modHooks.send = (msg) => (sendTarget() === null ? false : currentSession()?.sig.send(msg) ?? false);

/** Shows the call screen and starts joining. */
function startCall() {
  showScreen('call-screen');
  document.title = `${app.room?.name ?? 'Meeting'} · Veche`;
  $('room-name').textContent = app.room?.name ?? 'Meeting';
  if (!app.narrow.matches) panels.participants = true;
  resetSelfModeration();
  resetRecording();
  lobby.waiting = [];
  // Encrypted rooms: the media worker must exist before the first peer connection.
  if (!startE2ee(!!app.room?.e2ee, app.displayName)) {
    showMessage('This browser cannot join this meeting', UNSUPPORTED_TEXT);
    return;
  }
  renderAll();
  startCallCore();
}

/**
 * The call is over: say why.
 * @param {import('./lib/call-types.js').EndReason} reason
 * @param {string} message
 * @param {boolean} everJoined
 */
function ended(reason, message, everJoined) {
  setBanner(null);
  stopE2ee();
  app.connected = false;
  lobby.inLobby = false;
  closeMenu(false);
  remote.streams.clear();
  if (reason === 'refused' && !everJoined && !app.params.has('skipPrejoin')) {
    $('prejoin-error').textContent = message;
    $('prejoin-error').hidden = false;
    showScreen('prejoin-screen');
    return;
  }
  stopLocalMedia();
  app.roomState = new proto.RoomState();
  if (reason === 'left') {
    showMessage('You left the meeting', message, { label: 'Rejoin', run: rejoin });
  } else if (reason === 'removed') {
    const by = selfModeration.removedBy;
    showMessage(
      by ? `${by} removed you from the meeting` : 'A moderator removed you from the meeting',
      selfModeration.banned ? 'You cannot join this meeting again.' : 'Ask the host if you should join again.',
    );
  } else if (reason === 'denied') {
    showMessage('A moderator did not let you in', 'Ask the host for another way in, or try again later.', {
      label: 'Try again',
      run: () => location.reload(),
    });
  } else if (reason === 'room_gone') {
    showMessage('This meeting no longer exists', message);
  } else if (reason === 'elsewhere') {
    showMessage('You joined this meeting elsewhere', message, { label: 'Rejoin here', run: () => location.reload() });
  } else {
    showMessage('Could not join the meeting', message, { label: 'Try again', run: () => location.reload() });
  }
}

async function rejoin() {
  $('message-action').disabled = true;
  await Promise.all([startMic(), local.camWanted ? startCam() : Promise.resolve(true)]);
  $('message-action').disabled = false;
  startCall();
}

/**
 * Disables a button while its async action runs, so double clicks do not
 * race.
 * @param {HTMLButtonElement} button
 * @param {() => Promise<void> | void} action
 */
function bind(button, action) {
  button.addEventListener('click', async () => {
    if (button.dataset.busy) return;
    button.dataset.busy = '1';
    try {
      await action();
    } catch (e) {
      console.error(e);
      toast('Something went wrong. Please try again.');
    } finally {
      delete button.dataset.busy;
    }
  });
}

function wire() {
  $('prejoin-form').addEventListener('submit', onPrejoinSubmit);
  wirePasses();
  $('display-name').addEventListener('input', renderPreview);
  bind($('prejoin-mic'), toggleMic);
  bind($('prejoin-cam'), toggleCam);
  bind($('mic-button'), guarded('microphone', toggleMic));
  bind($('cam-button'), guarded('camera', toggleCam));
  bind($('screen-button'), guarded('screen', toggleScreen));
  bind($('hand-button'), toggleHand);
  bind($('lobby-leave'), leaveCall);
  wireModerationMenu();
  wireMeetingSettings();
  wireSelfModeration();
  wireRecording();
  wireSecurity();
  bind($('chat-button'), () => setPanel('chat'));
  bind($('participants-button'), () => setPanel('participants'));
  bind($('settings-button'), () => setPanel('settings'));
  bind($('leave-button'), leaveCall);
  bind($('copy-link'), copyLink);
  for (const b of document.querySelectorAll('.panel-close')) {
    const name = /** @type {'participants' | 'chat' | 'settings'} */ (/** @type {HTMLElement} */ (b).dataset.close);
    b.addEventListener('click', () => setPanel(name, false));
  }
  $('unmute-audio').addEventListener('click', () => {
    remote.audioBlocked = false;
    $('unmute-audio').hidden = true;
    for (const v of document.querySelectorAll('.tile-person video, .tile-screen video')) {
      const video = /** @type {HTMLVideoElement} */ (v);
      video.muted = false;
      video.play().catch(() => {});
    }
  });
  for (const id of ['prejoin-mic-select', 'settings-mic-select']) {
    $(id).addEventListener('change', (/** @type {Event} */ e) => chooseMic(/** @type {HTMLSelectElement} */ (e.target).value));
  }
  for (const id of ['prejoin-cam-select', 'settings-cam-select']) {
    $(id).addEventListener('change', (/** @type {Event} */ e) => chooseCam(/** @type {HTMLSelectElement} */ (e.target).value));
  }
  navigator.mediaDevices?.addEventListener?.('devicechange', refreshDevices);

  $('chat-form').addEventListener('submit', (/** @type {Event} */ e) => {
    e.preventDefault();
    sendChat();
  });
  $('chat-input').addEventListener('keydown', (/** @type {KeyboardEvent} */ e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendChat();
    }
  });
  $('chat-input').addEventListener('input', () => {
    updateCounter();
    if (!$('chat-error').hidden) showChatError(null);
  });
  $('chat-scroll').addEventListener('scroll', () => {
    if ($('chat-scroll').scrollTop < 40) loadOlder();
  });
  $('chat-older').addEventListener('click', loadOlder);

  new ResizeObserver(layoutTiles).observe($('stage'));
  app.narrow.addEventListener('change', () => {
    if (app.narrow.matches && panels.chat) panels.participants = panels.settings = false;
    renderPanels();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || !app.narrow.matches) return;
    for (const k of /** @type {const} */ (['participants', 'chat', 'settings'])) {
      if (panels[k]) setPanel(k, false);
    }
  });
  // Tell the room at once rather than leaving a "reconnecting" ghost.
  window.addEventListener('pagehide', () => {
    const s = currentSession();
    if (s?.sig.isOpen) s.sig.send(proto.build.leave());
  });
}

/** Debug hook for automated tests. */
const debugHook = {
  /** @returns {{participantId: string | null, participants: ParticipantInfo[], connected: boolean, nodeId: NodeId | null, policy: proto.PolicyView, lobby: proto.LobbyEntry[]}} */
  state: () => ({
    participantId: app.roomState.participantId,
    participants: app.roomState.list(),
    policy: app.roomState.policy,
    lobby: lobby.waiting,
    connected: sendTarget() !== null,
    nodeId: currentSession()?.nodeId ?? null,
  }),
  /** @returns {RTCPeerConnection | null} */
  pc: () => currentSession()?.pc ?? null,
};
/** @type {any} */ (window).veche = debugHook;

async function main() {
  wire();
  const slug = app.slug;
  if (!slug || !proto.isSlug(slug)) {
    showMessage('This meeting link is not valid', 'Check the link, or start a new meeting.');
    return;
  }
  app.ownerKey = storedOwnerKey();
  try {
    const [room, signedIn] = await Promise.all([
      proto.getRoom(slug, proto.withOwnerKey(app.ownerKey, { pass: app.pass })),
      fetchSignedIn(),
    ]);
    app.room = room;
    app.signedIn = signedIn;
  } catch (e) {
    const err = /** @type {proto.ApiError} */ (e);
    if (err.code === 'room_not_found' || err.code === 'bad_request') {
      showMessage('This meeting link is not valid', 'Check the link, or start a new meeting.');
    } else {
      showMessage('Could not load the meeting', err.message, { label: 'Try again', run: () => location.reload() });
    }
    return;
  }
  document.title = `${app.room.name} · Veche`;
  if (showRefusalIfAny() || refuseUnencryptableBrowser()) return;
  renderIdentity();
  showRecordingLinks();
  wireCover();
  if (app.signedIn) app.displayName = app.signedIn.display_name;
  const skip = app.params.get('skipPrejoin');
  if (skip === '1' || skip === 'true') {
    const given = (app.params.get('name') ?? storageGet(NAME_KEY) ?? '').trim();
    app.displayName = [...given].slice(0, proto.MAX_DISPLAY_NAME_CHARS).join('') || 'Guest';
    await Promise.all([startMic(), startCam()]);
    for (const err of [local.micError, local.camError]) if (err) console.warn(`veche: ${err}`);
    startCall();
    refreshDevices();
  } else {
    await showPrejoin();
  }
}


main();
