import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { DEFAULT_RETRY } from '../machines/retry.js';
import { REPLICATION_DEFAULTS } from '../machines/replication.js';
import type { CommandIO } from './io.js';
import { remoteCommands } from './remote-program.js';

export type Action = (command: Command, io: CommandIO) => Promise<number> | number;
/** Wraps an action so that its exit code reaches `main` (commander's actions return nothing it keeps). */
export type Runner = (action: Action) => (...args: unknown[]) => Promise<void>;

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export const repeatable = (value: string, previous: string[] = []): string[] => [...previous, value];

export const logLevelOption = () =>
  new Option('--log-level <level>', 'the least severe log lines shown').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

const logFormatOption = (detail = '') => new Option('--log-format <format>', `text (default) or json${detail}`);

/**
 * The command tree. Each command's module is loaded only when it runs: `ferry copy` does not
 * pay for the service's web server and database.
 */
export function buildProgram(run: Runner): Command {
  const program = new Command('ferry')
    .usage('<command> [options]')
    .description('Container-image replication between OCI/Docker registries')
    .version(version, '-V, --version');

  program
    .command('copy')
    .description('copy a repository, tag or digest between registries')
    .argument('<src>', 'registry/repository[:tag|@digest]; a SRC without tag or digest copies every tag (or those matching --tags)')
    .argument('<dst>', 'registry/repository[:tag]: the same tags in DST, or the tag DST names')
    .option('--tags <glob>', 'copy only matching tags; repeat it; !GLOB excludes', repeatable)
    .option('--semver <range>', 'copy only tags that are versions in RANGE (">=1.2 <2", "^3", "~1.4"): 1.2.3 and v1.2.3 are versions, 1.2 and latest are not')
    .option('--prerelease', 'let --semver take prereleases (2.0.0-rc.1, 1.2.3-alpine) too')
    .option('--latest <n>', 'copy only the N newest of the tags the other filters keep')
    .option('--latest-by <how>', "semver (default): the highest versions; created: the newest images, by their configs' creation time")
    .option('--platform <list>', 'os/arch[/variant][,...]: copy only these platforms of multi-arch images', repeatable)
    .option('--concurrency <n>', `blobs copied in parallel (default ${REPLICATION_DEFAULTS.blobConcurrency})`)
    .option('--batch <n>', `tags planned, copied and pushed together, as a batch (default ${REPLICATION_DEFAULTS.batchSize})`)
    .option('--in-flight <n>', `batches under way at once (default ${REPLICATION_DEFAULTS.batchesInFlight})`)
    .option('--retries <n>', `attempts after transient failures before giving up (default ${DEFAULT_RETRY.maxAttempts})`)
    .option('--src-creds <user:pass>', 'source credentials (or FERRY_SRC_CREDS; default: ~/.docker/config.json)')
    .option('--dest-creds <user:pass>', 'destination credentials (or FERRY_DEST_CREDS)')
    .option('--src-insecure', 'skip TLS verification and allow plain HTTP for the source')
    .option('--dest-insecure', 'the same for the destination')
    .option('--src-ca <file>', 'PEM CA bundle to trust for the source')
    .option('--dest-ca <file>', 'the same for the destination')
    .option('--limit-rate <kib>', 'blob bandwidth for the job, in KiB/s')
    .option('--src-rate <n>', 'at most N requests per second to the source (429s slow ferry down further)')
    .option('--dest-rate <n>', 'the same for the destination')
    .option('--referrers <which>', 'signatures, SBOMs and attestations copied with each image: all (default), none, or artifact types separated by commas (application/spdx+json,...)')
    .option('--require-signature <key.pub>', 'copy only images carrying a cosign signature that verifies with this public key (ECDSA P-256); the others are reported as refused')
    .option('--dry-run', 'print the plan (tags, referrers, blobs, bytes) and write nothing')
    .addOption(logFormatOption(' (pino lines on stdout)'))
    .addOption(logLevelOption())
    .option('--progress <seconds>', 'when stdout is not a terminal, a progress line this often (default 10; 0: none)')
    .option('--inspect', "run the copy under the web console (its address is printed) and send the job's inspection stream to Stately's inspector (ferry stately-inspector)")
    .addHelpText('after', '\nExit codes: 0 finished, 1 the job failed, or a tag failed or was refused, 2 bad usage, 130 stopped (Ctrl-C).')
    .action(run(async (command, io) => (await import('./copy.js')).copyCommand(command.args, command.opts(), io)));

  program
    .command('sync')
    .description('run the policies of a ferry.yaml once and print a summary')
    .requiredOption('-c, --config <file>', 'the registries and policies')
    .option('--policy <name>', 'run only this policy; repeat it for several', repeatable)
    .option('--db <path>', 'SQLite file to keep the jobs in (:memory: keeps them in memory)', ':memory:')
    .option('--workers <n>', 'jobs running at once (default 4)')
    .addOption(logFormatOption())
    .addOption(logLevelOption())
    .addHelpText('after', '\nExit codes: 0 every job finished, 1 a job failed or was stopped, 2 bad usage, 130 Ctrl-C.')
    .action(run(async (command, io) => (await import('./sync.js')).syncCommand(command.opts(), io)));

  program
    .command('serve')
    .description('run the job service: the web console at /, the REST API under /api/v1, the workers and the triggers')
    .option('--db <path|url>', 'a SQLite file (default ./data/ferry.db; created with its directory), or postgres://user:pass@host:5432/db to run several nodes on one PostgreSQL (or FERRY_DATABASE_URL)')
    .option('--lease <seconds>', 'how long this node holds a job without renewing its lease (default 15): a node that dies loses its jobs to the others after at most this long')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (default 8080)')
    .option('--workers <n>', 'jobs running at once (default 4)')
    .option('--config <file>', 'ferry.yaml: registries and policies to create or update at start-up')
    .option('--token <token>', 'API bearer token (or FERRY_API_TOKEN); required off loopback')
    .option('--token-file <file>', 'the token read from a file, out of sight of ps')
    .option('--secret-key-file <file>', 'the key that seals registry passwords, created (mode 0600) when missing (default ferry.key next to the SQLite file, or data/ferry.key for PostgreSQL); FERRY_SECRET_KEY (base64, 32 bytes) overrides it')
    .addOption(logFormatOption())
    .addOption(logLevelOption())
    .option('--inspect', "also send every job actor's inspection stream to Stately's inspector (FERRY_INSPECT_URL overrides ws://127.0.0.1:8081)")
    .addHelpText('after', '\nJobs left running by a crash resume from their last step: on another node once their lease\nruns out, or when the service starts again. SIGTERM (or Ctrl-C) drains the node: it stops\nclaiming and hands its jobs back at once.')
    .action(run(async (command, io) => (await import('./serve.js')).serveCommand(command.opts(), io)));

  program
    .command('ls')
    .description("list a repository's tags")
    .argument('<repo>', 'registry/repository')
    .option('--creds <user:pass>', 'credentials (or FERRY_CREDS; default: ~/.docker/config.json)')
    .option('--insecure', 'skip TLS verification and allow plain HTTP')
    .option('--ca <file>', 'PEM CA bundle to trust')
    .action(run(async (command, io) => (await import('./list-tags.js')).listTagsCommand(command.args[0]!, command.opts(), io)));

  program
    .command('inspect')
    .description('show an image: digest, media type, platforms, size and referrers')
    .argument('<ref>', 'registry/repository:tag or registry/repository@digest')
    .option('--json', 'print it as JSON')
    .option('--creds <user:pass>', 'credentials (or FERRY_CREDS; default: ~/.docker/config.json)')
    .option('--insecure', 'skip TLS verification and allow plain HTTP')
    .option('--ca <file>', 'PEM CA bundle to trust')
    .action(run(async (command, io) => (await import('./inspect.js')).inspectCommand(command.args[0]!, command.opts(), io)));

  remoteCommands(program, run);

  program
    .command('machine')
    .description('print a job machine (JSON or Mermaid)')
    .argument('[name]', 'replication, batch (the path each batch of tags takes) or deletion', 'replication')
    .option('--json', 'as JSON (the default)')
    .option('--mermaid', 'as a Mermaid state diagram')
    .action(run(async (command, io) => (await import('./machine.js')).machineCommand(command.processedArgs[0] as string, command.opts(), io.stdout)));

  program
    .command('secrets')
    .description('manage the key that seals the stored registry passwords')
    .command('rotate')
    .description('seal every registry password with a new key: the key file gets a new key, every password is sealed with it, then the old key is dropped (with FERRY_SECRET_KEY: set it to NEW,OLD, run this, then keep NEW). Restart every ferry serve on the database afterwards')
    .option('--db <path|url>', 'the store (default ./data/ferry.db, or FERRY_DATABASE_URL)')
    .option('--secret-key-file <file>', 'the key file (default ferry.key next to the SQLite file, or data/ferry.key for PostgreSQL)')
    .action(run(async (command, io) => (await import('./secrets.js')).rotateSecrets(command.opts(), io)));

  program
    .command('stately-inspector')
    .description("bridge --inspect streams to Stately's inspector in your browser (which needs network access)")
    .option('--port <port>', 'port to listen on (default 8081)')
    .option('--no-open', 'do not open the browser')
    .action(run(async (command, io) => (await import('./stately-inspector.js')).statelyInspectorCommand(command.opts(), io)));

  return program;
}
