// The participant list: everyone in the room, their role, raised hands
// (first raised first, at the top), status and devices, and for hosts and
// moderators each entry's "More actions" menu (ui/moderation-menu.js).

import * as proto from '../protocol.js';
import { $, icon, labelledIcon } from './dom.js';
import { app } from './state.js';
import { moreButton, refreshMenu } from './moderation-menu.js';

/** Re-renders the "Participants" list from the room state. */
export function renderParticipants() {
  const list = $('participants');
  const people = proto.listOrder(app.roomState.list());
  const hands = proto.handOrder(people).map((p) => p.id);
  $('participant-count').textContent = String(people.length);
  list.replaceChildren(
    ...people.map((p) => {
      const li = document.createElement('li');
      li.className = 'participant';
      li.dataset.participantId = p.id;
      const you = p.id === app.roomState.participantId;
      const name = document.createElement('span');
      name.className = 'participant-name';
      name.textContent = proto.participantLabel(p.display_name, you, !!p.guest);
      const badge = proto.roleBadge(proto.roleOf(p));
      if (badge) {
        const b = document.createElement('span');
        b.className = 'participant-badge';
        b.textContent = badge;
        name.append(' ', b);
      }
      const status = document.createElement('span');
      status.className = `participant-status ${p.status}`;
      status.textContent = p.status === 'reconnecting' ? 'reconnecting…' : 'connected';
      const icons = document.createElement('span');
      icons.className = 'participant-icons';
      const place = hands.indexOf(p.id);
      if (place >= 0) {
        const hand = document.createElement('span');
        hand.className = 'participant-hand';
        hand.setAttribute('role', 'img');
        hand.setAttribute('aria-label', `Hand raised (${proto.ordinal(place + 1)})`);
        hand.title = `Hand raised (${proto.ordinal(place + 1)})`;
        hand.append(icon('hand'), String(place + 1));
        icons.append(hand);
      }
      if (p.media.screen_sharing) icons.append(labelledIcon('screen', 'Sharing screen'));
      icons.append(
        p.media.mic_muted ? labelledIcon('mic-off', 'Microphone muted') : labelledIcon('mic', 'Microphone on'),
        p.media.camera_muted ? labelledIcon('cam-off', 'Camera off') : labelledIcon('cam', 'Camera on'),
      );
      const more = moreButton(p);
      if (more) icons.append(more);
      const text = document.createElement('span');
      text.className = 'participant-text';
      text.append(name, status);
      li.append(text, icons);
      return li;
    }),
  );
  refreshMenu();
}
