import type { Accelerator, AttachedDevice } from '../../protocol/reports.js';

/*
 * Devices are found by listing /dev rather than by asking a shell or udev:
 * a directory listing spawns nothing and cannot be steered by device names.
 * The patterns are anchored so that a stray entry such as `video0.bak` is
 * not taken for a camera.
 */

const ATTACHED: { pattern: RegExp; kind: AttachedDevice['kind'] }[] = [
  // USB-serial adapters, CDC-ACM boards (Arduino, modems), the Pi's PL011 UART.
  { pattern: /^tty(USB|ACM|AMA)[0-9]{1,3}$/, kind: 'serial' },
  { pattern: /^video[0-9]{1,3}$/, kind: 'video' },
  { pattern: /^gpiochip[0-9]{1,3}$/, kind: 'gpio' },
];

/** Attached devices worth scheduling on, from entry names directly under /dev, sorted by path. */
export function classifyDevices(devEntries: readonly string[]): AttachedDevice[] {
  const out: AttachedDevice[] = [];
  for (const name of devEntries) {
    const hit = ATTACHED.find((a) => a.pattern.test(name));
    if (hit) out.push({ path: `/dev/${name}`, kind: hit.kind });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const ACCELERATOR_NODES: { pattern: RegExp; accel: Accelerator }[] = [
  { pattern: /^nvidia[0-9]{1,2}$/, accel: { kind: 'gpu', vendor: 'NVIDIA', model: 'CUDA device' } },
  // Jetson boards expose their integrated GPU through nvhost, not /dev/nvidiaN.
  { pattern: /^nvhost-gpu$/, accel: { kind: 'gpu', vendor: 'NVIDIA', model: 'Jetson integrated GPU' } },
  { pattern: /^apex_[0-9]{1,2}$/, accel: { kind: 'tpu', vendor: 'Google', model: 'Coral Edge TPU (PCIe)' } },
  { pattern: /^hailo[0-9]{1,2}$/, accel: { kind: 'npu', vendor: 'Hailo', model: 'Hailo AI accelerator' } },
];

/** Virtual display adapters of hypervisors: reporting them as a GPU would attract GPU workloads. */
const VIRTUAL_GRAPHICS = /vmware|virtualbox|innotek|qxl|cirrus|bochs|red hat|virtio|hyper-v|microsoft/i;

/**
 * Accelerators from the graphics controllers the system reports plus the
 * device nodes of compute accelerators that no graphics listing shows.
 */
export function findAccelerators(
  graphics: readonly { vendor: string; model: string; memoryBytes?: number }[],
  devEntries: readonly string[],
): Accelerator[] {
  const out: Accelerator[] = [];
  for (const g of graphics) {
    if (VIRTUAL_GRAPHICS.test(`${g.vendor} ${g.model}`)) continue;
    out.push(g.memoryBytes === undefined ? { kind: 'gpu', vendor: g.vendor, model: g.model } : { kind: 'gpu', vendor: g.vendor, model: g.model, memoryBytes: g.memoryBytes });
  }
  const hasNvidiaGpu = out.some((a) => /nvidia/i.test(a.vendor));
  for (const name of [...devEntries].sort()) {
    const hit = ACCELERATOR_NODES.find((a) => a.pattern.test(name));
    if (!hit) continue;
    // The graphics listing already named this card; /dev/nvidiaN would count it twice.
    if (hit.accel.kind === 'gpu' && hit.accel.vendor === 'NVIDIA' && hasNvidiaGpu) continue;
    out.push({ ...hit.accel });
  }
  return out;
}
