import { Command, Option } from 'commander';
import { randomBytes } from 'node:crypto';
import { TSUNAGU_VERSION } from '../common/version.js';
import { MQTT_PORT } from '../protocol/mqtt-ports.js';
import type { runInit } from './enrollment-verbs.js';
import type { DeployOptions } from './deploy-command.js';
import { addDeploymentVerbs } from './deployment-program.js';
import { lazy } from './lazy-action.js';
import type { runSend } from './operator-commands.js';
import type { runRetire } from './retire-commands.js';

// Each verb's module is loaded when the verb runs: a start pays only for the
// code of its own verb (the broker client, SQLite and pino are not needed by
// every verb, and `deploy` hands its work to a running `serve` without them).
const enrollmentVerbs = () => import('./enrollment-verbs.js');
const deployCommand = () => import('./deploy-command.js');
const operatorCommands = () => import('./operator-commands.js');
const retireCommands = () => import('./retire-commands.js');

/**
 * The `tsunagu-fleet` command tree. Built by a function so that
 * `scripts/cli-docs.mjs` and the docs test render the very help text the
 * binary prints, at a fixed width.
 */
export function buildFleetProgram(options: { helpWidth?: number } = {}): Command {
const program = new Command('tsunagu-fleet')
  .description('tsunagu fleet side: create a fleet, make bootstrap files, run the enrollment service, manage devices')
  .version(TSUNAGU_VERSION)
  .showHelpAfterError()
  .configureHelp(options.helpWidth === undefined ? {} : { helpWidth: options.helpWidth });

const dirOption = new Option('-d, --dir <dir>', 'fleet directory').env('TSUNAGU_FLEET_DIR').default('./fleet');

program.command('init')
  .description('create a fleet: its key pairs and config')
  .addOption(dirOption)
  .option('--fleet-id <id>', 'fleet id ([a-z0-9-])', 'fleet')
  .option('--broker <url>', `external Mosquitto 2 broker the fleet side uses, e.g. mqtt://127.0.0.1:${MQTT_PORT} (default: an embedded broker inside \`serve\`)`)
  .option('--listen <host:port>', 'embedded broker only: where `serve` listens', `127.0.0.1:${MQTT_PORT}`)
  .option('--device-broker <url>', 'broker URL written into bootstrap files (default: --broker, or the embedded broker\'s address)')
  .option('--ca <file>', 'CA certificate (PEM) for a TLS broker')
  .option('--admin-user <name>', 'external broker: user with dynamic-security admin rights')
  .addOption(new Option('--admin-password <password>', 'external broker: its password').env('TSUNAGU_BROKER_ADMIN_PASSWORD'))
  .addOption(new Option('--claim <mode>', 'how unknown devices are claimed').choices(['token', 'allowlist', 'approve']).default('token'))
  .option('--claim-token <token>', 'batch claim token (token mode; generated when absent)')
  .option('--serials <list>', 'comma-separated serials (allowlist mode)', '')
  .option('--mqtt-version <n>', '5, or 4 for MQTT 3.1.1 brokers', '5')
  .addHelpText('after', `
Without --broker the fleet uses the broker embedded in \`tsunagu-fleet serve\` (MQTT 3.1.1, no
Mosquitto needed); with --broker, a Mosquitto 2 with the dynamic-security plugin.
Examples:
  tsunagu-fleet init --dir ./fleet
  tsunagu-fleet init --dir ./fleet --listen 0.0.0.0:${MQTT_PORT} --device-broker mqtt://gateway.lan:${MQTT_PORT}
  tsunagu-fleet init --dir ./fleet --broker mqtt://127.0.0.1:${MQTT_PORT} --admin-user admin --admin-password s3cret
`)
  .action(async (o: Parameters<typeof runInit>[0]) => (await enrollmentVerbs()).runInit({ ...o, generatedToken: randomBytes(18).toString('base64url') }));

program.command('bootstrap')
  .description('write the first-boot file for a batch of devices (and set up the broker roles)')
  .addOption(dirOption)
  .requiredOption('-o, --out <file>', 'where to write the bootstrap file')
  .option('--claim-token <token>', 'claim token to embed (token mode)')
  .addHelpText('after', '\nExample:\n  tsunagu-fleet bootstrap --dir ./fleet --claim-token T0K3N --out /media/boot/tsunagu.json\n')
  .action(lazy(enrollmentVerbs, 'runBootstrap'));

program.command('serve')
  .description('run the enrollment service')
  .addOption(dirOption)
  .addHelpText('after', `
Runs the embedded MQTT broker too when the fleet was made without --broker.
Example:
  tsunagu-fleet serve --dir ./fleet
`)
  .action(lazy(enrollmentVerbs, 'runServe'));

program.command('approve')
  .description('approve a pending device (approve claim mode) or a re-key request (any mode)')
  .addOption(dirOption)
  .argument('<device>', 'device id, or the serial of one pending device that is not a re-key request')
  .option('--as-new', 're-key request only: admit the new key as a device of its own (its own id); the device whose serial it shares is left as it is')
  .addHelpText('after', `
A re-key request is a new key presenting the serial of an active device (a reinstalled device, or
a cloned image that copied /etc/machine-id). By default its approval moves the new key onto that
device's id; with --as-new it joins under its own id and both devices stay. A re-key request naming
a revoked device can only be approved with --as-new.
Examples:
  tsunagu-fleet approve d-0123456789abcdef0123
  tsunagu-fleet approve SN-0042
  tsunagu-fleet approve --as-new d-89abcdef0123456789ab
`)
  .action(lazy(enrollmentVerbs, 'runApprove'));

program.command('revoke')
  .description('cut a stolen or compromised device off: delete its broker account and close its connection, clear its retained messages, refuse its key from now on')
  .addOption(dirOption)
  .argument('<device>', 'device id')
  .option('--reason <text>', 'why, kept in the audit record')
  .addHelpText('after', `
Works with or without \`serve\` running. With the embedded broker and no \`serve\`, the account
is removed from the broker's account file (nothing is connected and nothing retained then).
Revoking a revoked device does the broker part again. There is no un-revoke: the device's
key stays refused; to bring the machine back, wipe its state and enroll it as a new device.
Examples:
  tsunagu-fleet revoke d-0123456789abcdef0123
  tsunagu-fleet revoke d-0123456789abcdef0123 --reason "stolen from site 4"
`)
  .action(lazy(retireCommands, 'runRevoke'));

program.command('retire')
  .description('take a device out of service: it removes its services and wipes its identity and secrets, then it is revoked')
  .addOption(dirOption)
  .argument('<device>', 'device id')
  .option('--timeout <ms>', 'how long to wait for the device to confirm', '60000')
  .option('--force', 'revoke even when the device does not confirm (offline): it then keeps its containers and files')
  .addHelpText('after', `
The device must be online: it answers the signed retire command, then stops and removes the
containers it manages, deletes its keys, identity, bootstrap copy and stored state, and stops
for good (it refuses to start again until its state directory's retired.json is removed).
Exit status: 0 retired and revoked; 2 the device refused; 3 no answer in time (not revoked,
unless --force).
Examples:
  tsunagu-fleet retire d-0123456789abcdef0123
  tsunagu-fleet retire d-0123456789abcdef0123 --timeout 10000 --force
`)
  .action(async (device: string, o: Parameters<typeof runRetire>[1]) => {
    process.exitCode = await (await retireCommands()).runRetire(device, o);
  });

program.command('devices')
  .description('list enrolled and pending devices')
  .addOption(dirOption)
  .option('--labels', 'show the capability labels (from the inventories `serve` has seen)')
  .option('--json', 'machine-readable output')
  .option('--keys', 'with --json: add each device\'s public keys (signPublicKey, keyId, boxPublicKey)')
  .addHelpText('after', `
Examples:
  tsunagu-fleet devices
  tsunagu-fleet devices --labels
  tsunagu-fleet devices --json
  tsunagu-fleet devices --json --keys
`)
  .action(lazy(enrollmentVerbs, 'runDevices'));

program.command('deploy')
  .description('validate a compose file, publish it as the signed desired state of one device or of every device matching --selector, and follow the rollout')
  .addOption(dirOption)
  .argument('<device|compose>', 'device id, or the compose file when --selector is given')
  .argument('[compose]', 'compose file (YAML, the Compose subset the agent supports)')
  .option('-l, --selector <labels>', 'deploy to every active device whose labels match all pairs, e.g. arch=arm64,gpu=true')
  .option('--env-file <file>', 'dotenv file holding the values of the variables listed in x-tsunagu.secrets')
  .option('--registry-auth <host=user:password>', 'registry credentials, sealed to each device (repeatable; default: $TSUNAGU_REGISTRY_AUTH, entries separated by spaces)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--timeout <seconds>', 'how long to follow the rollout', '300')
  .option('--no-wait', 'only publish; do not follow the rollout')
  .option('--json', 'one JSON object per line (published, event, state, result)')
  .addHelpText('after', `
Secrets: a service lists variables under x-tsunagu.secrets; their values (from its environment
or --env-file) are removed from the document and sealed to the device's key. The document is
checked with the agent's own validation first: nothing is sent if any field is refused.
Exit status: 0 every device applied the version (synced or degraded); 1 the document or an option
was refused (nothing sent; 78 for configuration errors); 2 a device reported the version failed
or refused; 3 a device did not finish within --timeout (3 wins over 2 when both happen).
Examples:
  tsunagu-fleet deploy d-1234 compose.yaml
  tsunagu-fleet deploy d-1234 compose.yaml --env-file prod.env --registry-auth registry.example.com=ci:s3cret
  tsunagu-fleet deploy --selector arch=arm64,gpu=true compose.yaml --json
  tsunagu-fleet deploy d-1234 compose.yaml --no-wait
`)
  .action(async (first: string, second: string | undefined, o: DeployOptions) => {
    process.exitCode = await (await deployCommand()).runDeploy(first, second, o);
  });

addDeploymentVerbs(program, dirOption);

program.command('send')
  .description('send a signed command to a device and wait for its signed reply')
  .addOption(dirOption)
  .argument('<device>', 'device id')
  .argument('<command>', 'ping | report-now | restart | stop | start | logs | rotate-credentials | reread-desired')
  .option('-s, --service <name>', 'service name (restart, stop, start, logs)')
  .option('-n, --lines <n>', 'log lines (logs)')
  .option('--timeout <ms>', 'how long to wait for the reply', '30000')
  .option('--traceparent <tp>', 'W3C trace context carried into the reply, events and device logs')
  .option('--json', 'machine-readable output')
  .addHelpText('after', `
Exit status: 0 the device answered ok; 2 it answered with an error (code shown); 3 no answer in time.
Examples:
  tsunagu-fleet send d-1234 ping
  tsunagu-fleet send d-1234 logs --service web --lines 50
  tsunagu-fleet send d-1234 rotate-credentials
`)
  .action(async (device: string, command: string, o: Parameters<typeof runSend>[2]) => {
    process.exitCode = await (await operatorCommands()).runSend(device, command, o);
  });

program.command('status')
  .description('one device: link, last seen, inventory, last metrics')
  .addOption(dirOption)
  .argument('<device>', 'device id')
  .option('--json', 'machine-readable output')
  .addHelpText('after', `
A report that came but cannot be read, or an inventory or metrics report that did not come, is
listed as unavailable with the reason (\`unavailable\` in --json); \`refused\` counts the messages
the device refused, by error code.
Examples:
  tsunagu-fleet status d-0123456789abcdef0123
  tsunagu-fleet status d-0123456789abcdef0123 --json
`)
  .action(lazy(operatorCommands, 'runStatus'));

program.command('watch')
  .description('follow live reports and events of one device or of all (Ctrl-C to stop)')
  .addOption(dirOption)
  .argument('[device]', 'device id (default: every device)')
  .option('--json', 'one JSON object per line')
  .addHelpText('after', `
Image pulls show as a progress bar on a terminal, a line per 10 % otherwise.
Examples:
  tsunagu-fleet watch
  tsunagu-fleet watch d-0123456789abcdef0123 --json
`)
  .action(lazy(operatorCommands, 'runWatch'));
return program;
}
