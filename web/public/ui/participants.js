// The participant list: everyone in the room, their status and devices.

import { $, labelledIcon } from './dom.js';
import { app } from './state.js';
import { participantLabel } from '../lib/passes.js';

/** Re-renders the "Participants" list from the room state. */
export function renderParticipants() {
  const list = $('participants');
  const people = app.roomState.list();
  $('participant-count').textContent = String(people.length);
  list.replaceChildren(
    ...people.map((p) => {
      const li = document.createElement('li');
      li.className = 'participant';
      li.dataset.participantId = p.id;
      const you = p.id === app.roomState.participantId;
      const name = document.createElement('span');
      name.className = 'participant-name';
      name.textContent = participantLabel(p.display_name, you, !!p.guest);
      const status = document.createElement('span');
      status.className = `participant-status ${p.status}`;
      status.textContent = p.status === 'reconnecting' ? 'reconnecting…' : 'connected';
      const icons = document.createElement('span');
      icons.className = 'participant-icons';
      if (p.media.screen_sharing) icons.append(labelledIcon('screen', 'Sharing screen'));
      icons.append(
        p.media.mic_muted ? labelledIcon('mic-off', 'Microphone muted') : labelledIcon('mic', 'Microphone on'),
        p.media.camera_muted ? labelledIcon('cam-off', 'Camera off') : labelledIcon('cam', 'Camera on'),
      );
      const text = document.createElement('span');
      text.className = 'participant-text';
      text.append(name, status);
      li.append(text, icons);
      return li;
    }),
  );
}
