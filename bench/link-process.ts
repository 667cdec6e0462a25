/**
 * A Link (bench/link.ts) in a process of its own, which `startLink` forks: the profile as JSON in
 * argv[2], requests and replies over the IPC channel. Ends with its parent (the channel closes).
 */
import { Link } from './link.js';
import type { LinkProfile, LinkReply, LinkRequest } from './link.js';

const link = new Link(JSON.parse(process.argv[2]!) as LinkProfile);
const reply = (message: LinkReply): void => void process.send!(message);

process.on('message', (request: LinkRequest) => {
  const answer = async (): Promise<unknown> => {
    switch (request.type) {
      case 'expose':
        return link.expose(request.target);
      case 'stats':
        return link.stats();
    }
  };
  answer().then(
    (result) => reply({ id: request.id, result }),
    (error: unknown) => reply({ id: request.id, error: String(error) }),
  );
});
process.once('disconnect', () => {
  void link.close().finally(() => process.exit(0));
});
reply({ type: 'ready' });
