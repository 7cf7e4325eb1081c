/**
 * Normalise a machine's architecture to the Go/OCI platform name that image
 * manifests use (`amd64`, `arm64`, `arm/v7`, `arm/v6`, `386`, …), so that the
 * fleet can match a device against an image's platforms directly.
 *
 * `machine` is `uname -m`; `processArch` is Node's `process.arch`, which
 * reflects the userland. They disagree on a common Raspberry Pi setup: a
 * 64-bit kernel (`aarch64`) with the 32-bit Raspberry Pi OS userland, whose
 * container engine pulls `arm/v7` images. The userland wins there.
 */
export function normalizeArch(machine: string, processArch?: string): string {
  const m = machine.trim().toLowerCase();
  const fromMachine = MACHINE_TO_OCI[m] ?? armFromMachine(m);
  if (processArch === 'arm' && (fromMachine === 'arm64' || fromMachine === undefined)) return 'arm/v7';
  if (processArch === 'ia32' && (fromMachine === 'amd64' || fromMachine === undefined)) return '386';
  if (fromMachine !== undefined) return fromMachine;
  return (processArch !== undefined ? NODE_TO_OCI[processArch] : undefined) ?? 'unknown';
}

const MACHINE_TO_OCI: Record<string, string> = {
  x86_64: 'amd64',
  amd64: 'amd64',
  i386: '386',
  i486: '386',
  i586: '386',
  i686: '386',
  x86: '386',
  aarch64: 'arm64',
  arm64: 'arm64',
  // A 64-bit ARMv8 CPU running a 32-bit kernel/userland in compatibility mode.
  armv8l: 'arm/v7',
  riscv64: 'riscv64',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  mips64: 'mips64',
  mips64el: 'mips64le',
  mips: 'mips',
  mipsel: 'mipsle',
  loongarch64: 'loong64',
};

const NODE_TO_OCI: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm/v7',
  riscv64: 'riscv64',
  ppc64: 'ppc64le',
  s390x: 's390x',
  mips: 'mips',
  mipsel: 'mipsle',
  loong64: 'loong64',
};

/** armv5tel, armv6l, armv7l, armv7hl… → arm/v5, arm/v6, arm/v7. */
function armFromMachine(m: string): string | undefined {
  const match = /^armv([5-7])/.exec(m);
  return match ? `arm/v${match[1]}` : undefined;
}
