import { Option, type Command } from 'commander';
import type { CommandIO } from './io.js';
import { repeatable, type Runner } from './program.js';

const remote = () => import('./remote.js');
const settings = () => import('./remote-settings.js');

/** The commands that talk to a running `ferry serve`, each with where it is and the token. */
export function remoteCommands(program: Command, run: Runner): void {
  const group = (name: string, description: string) => program.command(name).description(description);
  const leaf = (parent: Command, name: string, description: string, action: (command: Command, io: CommandIO) => Promise<number>) =>
    parent
      .command(name)
      .description(description)
      .option('--server <url>', 'the service (default http://127.0.0.1:8080, or FERRY_SERVER)')
      .option('--token <token>', 'API token (or FERRY_API_TOKEN)')
      .option('--token-file <file>', 'the token read from a file, out of sight of ps')
      .action(run(action));
  const listing = (parent: Command, owner: Option) =>
    leaf(parent, 'ls', `list ${parent.name()}`, async (c, io) => (await remote()).list(c, io, parent.name() as 'jobs' | 'executions'))
      .addOption(owner)
      .option('--status <status>', `only ${parent.name()} in this status`)
      .option('--limit <n>', 'at most this many (default 50)');
  const id = 'a name, a whole id or the start of one';
  const idOnly = 'an id or the start of one';

  const jobs = group('jobs', 'list, show, stop, retry and follow the logs of jobs on a running service');
  listing(jobs, new Option('--execution <execution>', `only this execution's (${idOnly})`));
  leaf(jobs, 'show', 'show a job and its history', async (c, io) => (await remote()).showJob(c, io)).argument('<job>', idOnly);
  leaf(jobs, 'stop', 'stop a job', async (c, io) => (await remote()).act(c, io, 'jobs', 'stop')).argument('<job>', idOnly);
  leaf(jobs, 'retry', 'queue an ended job again', async (c, io) => (await remote()).act(c, io, 'jobs', 'retry')).argument('<job>', idOnly);
  leaf(jobs, 'logs', "print a job's log", async (c, io) => (await remote()).jobLogs(c, io))
    .argument('<job>', idOnly)
    .option('-f, --follow', 'keep printing new lines until the job ends (or Ctrl-C, SIGTERM)');

  const executions = group('executions', 'list, show, stop and retry executions on a running service');
  listing(executions, new Option('--policy <policy>', `only this policy's (${id})`));
  leaf(executions, 'show', 'show an execution and its jobs', async (c, io) => (await remote()).showExecution(c, io)).argument('<execution>', idOnly);
  leaf(executions, 'stop', "stop an execution's jobs", async (c, io) => (await remote()).act(c, io, 'executions', 'stop')).argument('<execution>', idOnly);
  leaf(executions, 'retry', "queue an execution's failed jobs again", async (c, io) => (await remote()).act(c, io, 'executions', 'retry')).argument('<execution>', idOnly);

  const policies = group('policies', 'list, add, remove and trigger replication policies on a running service');
  leaf(policies, 'ls', 'list policies', async (c, io) => (await settings()).listPolicies(c, io));
  leaf(policies, 'add', 'add a policy', async (c, io) => (await settings()).addPolicy(c, io))
    .argument('<name>', 'its name')
    .requiredOption('--from <registry>', `the source registry (${id})`)
    .requiredOption('--to <registry>', `the destination registry (${id})`)
    .option('--repositories <glob>', 'replicate only matching repositories (** crosses /); repeat it; !GLOB excludes', repeatable)
    .option('--tags <glob>', 'replicate only matching tags; repeat it; !GLOB excludes', repeatable)
    .option('--namespace <path>', 'put the repositories under this path at the destination')
    .option('--flatten <n>', 'leading path components dropped at the destination; -1 keeps only the last')
    .option('--platform <list>', 'os/arch[/variant][,...]: only these platforms of multi-arch images', repeatable)
    .option('--cron <schedule>', 'run on this cron schedule (default: only when triggered)')
    .option('--on-push', "run on the source registry's push and delete events (its webhook)")
    .option('--disabled', 'add it disabled');
  leaf(policies, 'rm', 'remove a policy (its executions stay)', async (c, io) => (await settings()).remove(c, io, 'policies')).argument('<policy>', id);
  leaf(policies, 'trigger', 'run a policy now', async (c, io) => (await settings()).triggerPolicy(c, io)).argument('<policy>', id);

  const registries = group('registries', 'list, add and remove registries on a running service');
  leaf(registries, 'ls', 'list registries', async (c, io) => (await settings()).listRegistries(c, io));
  leaf(registries, 'add', 'add a registry', async (c, io) => (await settings()).addRegistry(c, io))
    .argument('<name>', 'its name')
    .argument('<url>', 'as in image references: ghcr.io, registry.example.com:5000')
    .option('--creds <user:pass>', 'credentials to log in with')
    .option('--credential-helper <name>', 'a docker credential helper to ask for the login (ecr-login runs docker-credential-ecr-login)')
    .option('--insecure', 'skip TLS verification and allow plain HTTP')
    .option('--ca <file>', 'PEM CA bundle to trust')
    .option('--rate <n>', 'at most N requests per second to it from each node (429s slow ferry down further)');
  leaf(registries, 'rm', 'remove a registry', async (c, io) => (await settings()).remove(c, io, 'registries')).argument('<registry>', id);

  const nodes = group('nodes', "the ferry serve processes on the service's database");
  leaf(nodes, 'ls', 'list the nodes', async (c, io) => (await remote()).listNodes(c, io));
}
