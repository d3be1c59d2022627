/**
 * Stable, compact text forms of core values, for simulator traces and interaction tests.
 */
import type { Entry, Message, Ready } from './types.ts';

export function describeEntry(entry: Entry): string {
  const kind = entry.kind === 'normal' ? `${entry.data.byteLength}B` : entry.kind;
  const membership = entry.membership === undefined
    ? ''
    : ` voters=(${entry.membership.voters.join(',')}) learners=(${entry.membership.learners.join(',')})`;
  return `${entry.index}/${entry.term}:${kind}${membership}`;
}

export function describeMessage(message: Message): string {
  const head = `${message.from}->${message.to} t${message.term} ${message.type}`;
  switch (message.type) {
    case 'appendEntries':
      return `${head} prev=${message.prevIndex}/${message.prevTerm} commit=${message.commit} entries=[${message.entries.map(describeEntry).join(' ')}]`;
    case 'appendEntriesResponse':
      return message.success
        ? `${head} ok match=${message.matchIndex}`
        : `${head} reject prev=${message.rejectIndex} hint=${message.hintIndex}/${message.hintTerm}`;
    case 'requestVote':
      return `${head}${message.preVote ? ' pre' : ''}${message.transfer ? ' transfer' : ''} last=${message.lastIndex}/${message.lastTerm}`;
    case 'requestVoteResponse':
      return `${head}${message.preVote ? ' pre' : ''} ${message.granted ? 'granted' : 'rejected'}`;
    case 'heartbeat':
      return `${head} commit=${message.commit} round=${message.readRound}`;
    case 'heartbeatResponse':
      return `${head} round=${message.readRound}`;
    case 'installSnapshot':
      return `${head} snap=${message.snapshot.index}/${message.snapshot.term} offset=${message.offset} bytes=${message.data?.byteLength ?? 0}${message.done ? ' done' : ''}`;
    case 'installSnapshotResponse':
      return `${head} snap=${message.snapshotIndex} next=${message.nextOffset}${message.done ? ' done' : ''}`;
    case 'timeoutNow':
      return head;
    case 'readIndexRequest':
      return `${head} id=${message.requestId}`;
    case 'readIndexResponse':
      return `${head} id=${message.requestId} index=${message.index}`;
  }
}

export function describeReady(ready: Ready): string {
  const parts: string[] = [`ready#${ready.number}`];
  if (ready.hardState !== null) {
    parts.push(`hard=t${ready.hardState.term}/v${ready.hardState.vote ?? '-'}/c${ready.hardState.commit}`);
  }
  if (ready.entries.length > 0) parts.push(`persist=[${ready.entries.map(describeEntry).join(' ')}]`);
  if (ready.snapshot !== null) parts.push(`install=${ready.snapshot.index}/${ready.snapshot.term}`);
  if (ready.committed.length > 0) {
    parts.push(`apply=${ready.committed[0]?.index}..${ready.committed.at(-1)?.index}`);
  }
  if (ready.readStates.length > 0) parts.push(`reads=${ready.readStates.map((r) => `${r.requestId}@${r.index}`).join(',')}`);
  if (ready.readsDropped.length > 0) parts.push(`readsDropped=${ready.readsDropped.join(',')}`);
  if (ready.mustSync) parts.push('sync');
  return parts.join(' ');
}
