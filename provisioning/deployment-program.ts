import { Option, type Command } from 'commander';
import type { CreateOptions, RevisionOptions } from './deployment-commands.js';
import { lazy } from './lazy-action.js';

// Loaded when a deployment verb runs (see fleet-program.ts).
const deploymentCommands = () => import('./deployment-commands.js');

/** The `deployment …` verbs and `label`: deployments and the fleet labels they select on. */
export function addDeploymentVerbs(program: Command, dirOption: Option): void {
  const repeatable = (v: string, acc: string[]): string[] => [...acc, v];
  const revisionOptions = (c: Command): Command => c
    .option('--env-file <file>', 'dotenv file holding the values of the variables listed in x-tsunagu.secrets')
    .option('--registry-auth <host=user:password>', 'registry credentials (repeatable; default: $TSUNAGU_REGISTRY_AUTH)', repeatable, [] as string[])
    .option('--setting <name=value>', 'device setting for the devices of this deployment: metricsIntervalMs (repeatable)', repeatable, [] as string[]);

  const deployment = program.command('deployment')
    .description('deployments: a workload (and device settings) kept running on every device whose labels match, rolled out in waves')
    .addHelpText('after', `
\`tsunagu-fleet serve\` keeps each deployment applied: a device that enrolls or whose labels change
gets it within seconds, one that stops matching loses its services. Several deployments may match
one device: each adds its services; a service name claimed by two goes to the higher priority.
See docs/deployments.md.

Examples:
  tsunagu-fleet deployment create base --selector arch=arm64 monitoring.yaml --priority 10
  tsunagu-fleet deployment update base monitoring-v2.yaml
  tsunagu-fleet deployment status base --watch
`);

  revisionOptions(deployment.command('create')
    .description('create a deployment; devices that match get it now and whenever they enroll')
    .addOption(dirOption)
    .argument('<name>', 'deployment name ([a-z0-9-])')
    .argument('<compose>', 'compose file (YAML, the Compose subset the agent supports)')
    .requiredOption('-l, --selector <labels>', 'the devices it applies to: every pair must match, e.g. site=berlin,arch=arm64')
    .option('--priority <n>', 'a service name claimed by two deployments goes to the higher priority', '0')
    .option('--waves <list>', 'rollout waves of later revisions, counts or percentages of the devices (default 1,10%,50%,100%)')
    .option('--bake <duration>', 'how long a device stays healthy after probation before it counts as passed, e.g. 30s, 10m (default 10m)')
    .option('--max-failures <n|n%>', 'failed devices past which the rollout halts (default 5%)')
    .addOption(new Option('--on-halt <action>', 'what happens to failed devices: back to the previous revision, or left as they are (default revert)').choices(['revert', 'hold']))
    .option('--wave-deadline <duration>', 'past this a device that is offline or still working no longer holds its wave (default 30m)'))
    .addHelpText('after', `
The first revision goes to every matching device at once (there is nothing to go back to);
each later revision (\`deployment update\`) rolls out in the waves given here.
Examples:
  tsunagu-fleet deployment create monitoring --selector os=linux exporter.yaml
  tsunagu-fleet deployment create web --selector site=berlin web.yaml --priority 10 --waves 1,10%,100% --bake 10m
`)
    .action(async (name: string, compose: string, o: CreateOptions) => (await deploymentCommands()).runDeploymentCreate(name, compose, o));

  revisionOptions(deployment.command('update')
    .description('a new revision of a deployment: rolled out by its strategy')
    .addOption(dirOption)
    .argument('<name>', 'deployment name')
    .argument('<compose>', 'compose file'))
    .addHelpText('after', `
Device settings carry over from the previous revision unless --setting is given.
Example:
  tsunagu-fleet deployment update web web-v2.yaml
`)
    .action(async (name: string, compose: string, o: RevisionOptions) => (await deploymentCommands()).runDeploymentUpdate(name, compose, o));

  deployment.command('list')
    .description('list deployments with their revision, state and how many devices match')
    .addOption(dirOption)
    .option('--json', 'machine-readable output')
    .action(lazy(deploymentCommands, 'runDeploymentList'));

  deployment.command('status')
    .description('one deployment: its rollout (waves, counts per state, failing devices with reasons), its devices, service conflicts')
    .addOption(dirOption)
    .argument('<name>', 'deployment name')
    .option('--json', 'machine-readable output')
    .option('--watch', 'redraw whenever the rollout changes (Ctrl-C to stop); with --json, one object per line')
    .action(lazy(deploymentCommands, 'runDeploymentStatus'));

  for (const verb of ['pause', 'resume', 'abort'] as const) {
    deployment.command(verb)
      .description({ pause: 'stop a rollout where it is', resume: 'carry a paused rollout on', abort: 'stop a rollout and put every device back on the previous revision' }[verb])
      .addOption(dirOption)
      .argument('<name>', 'deployment name')
      .action(async (name: string, o: { dir: string }) => (await deploymentCommands()).runDeploymentState(verb, name, o));
  }

  deployment.command('delete')
    .description('delete a deployment: its devices lose its services')
    .addOption(dirOption)
    .argument('<name>', 'deployment name')
    .action(lazy(deploymentCommands, 'runDeploymentDelete'));

  program.command('label')
    .description("set or remove the fleet's own labels of a device (deployments select on them, beside the device's reported labels)")
    .addOption(dirOption)
    .argument('<device>', 'device id')
    .argument('<changes...>', 'key=value to set, key- to remove')
    .addHelpText('after', `
A fleet label wins over a reported label of the same key.
Examples:
  tsunagu-fleet label d-0123456789abcdef0123 site=berlin group=canary
  tsunagu-fleet label d-0123456789abcdef0123 group-
`)
    .action(lazy(deploymentCommands, 'runLabel'));
}
