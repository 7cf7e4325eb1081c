// How the agent is started on a device: node flags and environment. The
// systemd unit (issue #8) uses exactly these:
//   Environment=<AGENT_ENVIRONMENT…>
//   ExecStart=/usr/bin/node <AGENT_NODE_FLAGS…> /usr/lib/tsunagu/tsunagu-agent.js run
// and `npm run bench` measures the agent under them. What each one saves, and
// what the flags left out would cost or save, is measured in docs/benchmarks.md
// (`npm run bench -- --flags` measures them again).
export const AGENT_NODE_FLAGS = [
  // V8 grows each of the young generation's two semi-spaces up to 16 MB when
  // objects survive a burst (a deploy, the first reports) and keeps them; the
  // agent's live young objects fit in far less than 1 MB.
  '--max-semi-space-size=1',
  // No code generation at run time: V8 interprets bytecode only (no
  // optimizing or baseline compiler, regexps interpreted, no WebAssembly,
  // lazily allocated feedback). The agent idles between rare bursts; the
  // compilers' own memory (their code, zones and generated code) was the
  // largest single item left (~10 MB) and their speed buys nothing measurable
  // here: idle CPU, report CPU and deploy latency are in docs/benchmarks.md.
  '--lite-mode',
  // --lite-mode turns WebAssembly off and says so on stderr at every start unless told.
  '--no-expose-wasm',
];

export const AGENT_ENVIRONMENT = {
  // glibc raises its trim threshold the first time a large block is freed, and
  // from then on keeps freed memory instead of returning it: the ~6 MB of
  // compiler zones used while the bundle loads stay resident for the
  // process's life. Setting the threshold (to glibc's own default, 128 KiB)
  // turns that adjustment off. Ignored by other C libraries.
  MALLOC_TRIM_THRESHOLD_: '131072',
};
