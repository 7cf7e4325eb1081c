// Mosquitto 2 and its clients (and faketime for the clock tests), installed from Debian packages when missing:
// what the integration tests and the bench run against.
import { spawnSync } from 'node:child_process';

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function ensureBrokerPackages() {
  const wanted = [
    ['mosquitto', 'mosquitto'],
    ['mosquitto_ctrl', 'mosquitto-clients'],
    // The clock scenarios run the agent under a fake clock (test/faults/clock-skew.test.ts).
    ['faketime', 'faketime'],
  ];
  const missing = wanted.filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing Debian packages: ${missing.join(' ')} (run as root or install them)`);
  console.log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  if (r.status !== 0) throw new Error('apt-get install failed');
}
