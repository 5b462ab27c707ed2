/**
 * A stage in the inference worker, end to end in Node: the main thread's WorkerStages / WorkerStage
 * (worker-stage.ts) drive serveStages (stage-worker-host.ts) over a real MessageChannel (structured clone
 * + transfer, as between a page and its Worker), the stage's session on onnxruntime-web's wasm backend.
 * A single stage (embedding and head) needs no links, so the PeerJS carrier is a stand-in whose dials
 * fail. Its tokens must be the fp64 reference's greedy tokens, their text decoded on the main end, and its
 * errors must cross as TandemErrors with their codes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { TandemError } from '../../core/errors.ts';
import type { ModelManifest } from '../../shards/manifest.ts';
import { ReferenceModel } from '../../shards/reference-forward.ts';
import type { PromptTokenizer } from '../../shards/runtime/prompt-tokenizer.ts';
import type { PhaseEvent, StageAssignment, StartRequest, TokenEvent } from '../../shards/runtime/stage-peer.ts';
import { removeTestPackages, testPackage, type TestPackage } from '../../shards/stage-test-packages.ts';
import type { FrameChannelSink, PeerJsCarrier, PeerJsTransportOptions } from '../transport/peerjs-transport.ts';
import { createOrtWebRuntime } from './ort-web.ts';
import { serveStages } from './stage-worker-host.ts';
import { WorkerStages, type WorkerStage, type WorkerStageOptions } from './worker-stage.ts';

const PROMPT_IDS = [11, 200, 37, 5, 380, 91, 64, 2];
const MAX_NEW = 5;
const GREEDY = { temperature: 0 };
const PEERJS: PeerJsTransportOptions = { peerId: 'A', token: 'x', host: 'h', port: 1, secure: false };

/** A start of the greedy reference request with prompt ids (the fields a test varies over it). */
const startOf = (requestId: number, over: Partial<StartRequest> = {}): StartRequest => ({
  requestId,
  prompt: 'x',
  maxNewTokens: MAX_NEW,
  sampling: GREEDY,
  promptTokenIds: PROMPT_IDS,
  stopTokens: [],
  ...over,
});
/** ids -> their numbers joined by spaces: every token adds text */
const tokenText: Pick<PromptTokenizer, 'decode'> = { decode: (ids) => ids.join(' ') };

const channel = new MessageChannel();
const ort = await import('onnxruntime-web');
const runtime = createOrtWebRuntime({ ort, numThreads: 1 });
/** The worker's own unit lookups (committed-unit.ts in a page): what it was asked, and the ids it declines. */
const lookups = { asked: [] as string[], declined: new Set<string>() };
serveStages(channel.port2, () => runtime, {
  unitLookup: (where, packageName) => (unit) => {
    lookups.asked.push(`${where.db}/${where.store}/${packageName}/${unit.id}`);
    // the package's bytes stand in for the cache's Blobs; a declined unit is the main thread's to read
    return Promise.resolve(lookups.declined.has(unit.id) ? null : new Blob([pkg.unitBytes(unit).slice()]));
  },
});
const stages = new WorkerStages(channel.port1);
channel.port1.start();
channel.port2.start();

/** The stand-in for PeerJS: it registers at once, and every dial fails (a single stage dials no one). */
const carrierCalls = { created: [] as PeerJsTransportOptions[], dials: [] as string[], closed: 0 };
function fakeCarrier(opts: PeerJsTransportOptions, _sink: FrameChannelSink): Promise<PeerJsCarrier> {
  carrierCalls.created.push(opts);
  return Promise.resolve({
    localId: opts.peerId,
    dial(peerId: string) {
      carrierCalls.dials.push(peerId);
      return Promise.reject(
        new TandemError('transport-connect-failed', `No links in this test (dialled '${peerId}').`),
      );
    },
    closeLink: () => undefined,
    close: () => {
      carrierCalls.closed++;
    },
  });
}

afterAll(() => {
  stages.close();
  channel.port1.close();
  removeTestPackages();
});

/** The whole model on one page: it embeds, has the head and is its own first and last peer. */
function singleAssignment(manifest: ModelManifest): StageAssignment {
  return {
    layers: { start: 0, end: manifest.config.num_hidden_layers },
    embeds: true,
    hasHead: true,
    predecessorPeerId: null,
    successorPeerId: null,
    firstPeerId: 'A',
    lastPeerId: 'A',
  };
}

interface Recorded {
  phases: PhaseEvent[];
  tokens: TokenEvent[];
  reads: string[];
}

/** A WorkerStage's options over `pkg`, recording its phases, tokens and unit reads. */
function stageOptions(pkg: TestPackage, extra: Partial<WorkerStageOptions> = {}): [WorkerStageOptions, Recorded] {
  const manifest = pkg.reader.manifest;
  const rec: Recorded = { phases: [], tokens: [], reads: [] };
  const opts: WorkerStageOptions = {
    manifest,
    assignment: singleAssignment(manifest),
    backend: 'wasm',
    emulation: null,
    // a fresh copy per read: the main end transfers it to the worker, which detaches it here
    readUnit: (unitId) => {
      rec.reads.push(unitId);
      const unit = manifest.units.find((u) => u.id === unitId);
      return unit
        ? Promise.resolve(pkg.unitBytes(unit).slice())
        : Promise.reject(new TandemError('unit-missing', `No unit '${unitId}'.`));
    },
    tokenText,
    onPhase: (e) => rec.phases.push(e),
    onToken: (e) => rec.tokens.push(e),
    ...extra,
  };
  return [opts, rec];
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TandemError);
  return (err as TandemError).code;
}

const forRequest = <T extends { requestId: number }>(xs: T[], requestId: number) =>
  xs.filter((x) => x.requestId === requestId);

const pkg = await testPackage('qwen3', true, 'fp32');
const manifest = pkg.reader.manifest;
// no stop tokens (each start says so): every request generates MAX_NEW tokens, as the reference does
const reference = new ReferenceModel(manifest, (u) => pkg.unitBytes(u)).greedy(PROMPT_IDS, MAX_NEW);

describe('WorkerStage: a stage in the inference worker (MessageChannel, wasm)', () => {
  let stage: WorkerStage;
  let rec: Recorded;

  it('connects through the carrier factory it is given', async () => {
    await stages.connect(PEERJS, fakeCarrier);
    expect(carrierCalls.created).toEqual([PEERJS]);
    expect(stages.localId).toBe('A');
    await stages.connect(PEERJS, fakeCarrier); // the same id: already registered
    expect(carrierCalls.created).toHaveLength(1);
  });

  it("reads the worker's clock against its own: here both ends share one clock, so the offset is within a round trip of 0", async () => {
    const t0 = performance.now();
    const offset = await stages.workerClockOffset();
    expect(Math.abs(offset)).toBeLessThanOrEqual(performance.now() - t0);
    expect(await stages.workerClockOffset()).toBe(offset); // measured once
  });

  it('a single stage == the fp64 reference; token text from the main end; every phase reported before run() resolves', async () => {
    expect(reference).toHaveLength(MAX_NEW);
    const [opts, r] = stageOptions(pkg);
    rec = r;
    stage = await stages.create(opts);
    expect(rec.reads).toEqual([]); // created, not loaded
    await stage.run(startOf(1));
    const tokens = forRequest(rec.tokens, 1);
    expect(tokens.map((t) => t.tokenId)).toEqual(reference);
    expect(tokens.map((t) => t.index)).toEqual([0, 1, 2, 3, 4]);
    expect(tokens.map((t) => t.done)).toEqual([false, false, false, false, true]);
    expect(tokens[MAX_NEW - 1].finishReason).toBe('max-tokens');
    for (const t of tokens) expect(t.text).not.toBe('');
    expect(tokens.map((t) => t.text).join('')).toBe(reference.join(' '));
    expect(rec.tokens).toHaveLength(MAX_NEW); // nothing of another request

    expect(rec.phases.length).toBeGreaterThan(0);
    expect(rec.phases.every((p) => p.requestId === 1)).toBe(true);
    const step0 = rec.phases.filter((p) => p.step === 0).map((p) => p.phase);
    expect(step0).toEqual(expect.arrayContaining(['storage-read', 'session-create', 'compute', 'sample', 'kernel']));
    // the decode steps' reports (held up to 100 ms in the worker) are flushed before run() resolves
    const computed = rec.phases.filter((p) => p.phase === 'compute').map((p) => p.step);
    expect(computed).toEqual([0, 1, 2, 3, 4]);
    expect(rec.phases.filter((p) => p.step >= 1 && p.phase === 'storage-read')).toEqual([]);
    for (const p of rec.phases) expect(p.endMs).toBeGreaterThanOrEqual(p.startMs);
    // every unit of the model was read once, from the main end
    expect([...rec.reads].sort()).toEqual(manifest.units.map((u) => u.id).sort());
    expect(carrierCalls.dials).toEqual([]); // a single stage needs no links
  });

  it('where the page allows it, the worker looks units up itself and asks the main end only for those it cannot', async () => {
    const [opts, r] = stageOptions(pkg, { unitStore: { db: 'tandem-shards', store: 'units' } });
    const declined = manifest.units[0].id;
    lookups.declined = new Set([declined]);
    const own = await stages.create(opts);
    try {
      await own.run(startOf(50));
      expect(forRequest(r.tokens, 50).map((t) => t.tokenId)).toEqual(reference);
      expect(r.reads).toEqual([declined]);
      expect([...lookups.asked].sort()).toEqual(
        manifest.units.map((u) => `tandem-shards/units/${manifest.name}/${u.id}`).sort(),
      );
    } finally {
      await own.dispose();
      lookups.declined = new Set();
    }
  });

  it('a second request on the same stage: the same tokens, on the kept session', async () => {
    const reads = rec.reads.length;
    await stage.run(startOf(2));
    const tokens = forRequest(rec.tokens, 2);
    expect(tokens.map((t) => t.tokenId)).toEqual(reference);
    expect(tokens.map((t) => t.index)).toEqual([0, 1, 2, 3, 4]);
    expect(tokens.map((t) => t.text).join('')).toBe(reference.join(' '));
    const phases = forRequest(rec.phases, 2);
    expect(phases.map((p) => p.phase)).toContain('compute');
    expect(phases.map((p) => p.phase)).not.toContain('storage-read');
    expect(phases.map((p) => p.phase)).not.toContain('session-create');
    expect(rec.reads).toHaveLength(reads); // no unit read again
    expect(carrierCalls.dials).toEqual([]);
  });

  it("a first stage's start without ids: the main end encodes the prompt with loadTokenizer", async () => {
    const encoded: [string, { chatTemplate?: boolean } | undefined][] = [];
    let loads = 0;
    const tokenizer: PromptTokenizer = {
      hasChatTemplate: false,
      encode: (prompt, o) => {
        encoded.push([prompt, o]);
        return [...PROMPT_IDS];
      },
      decode: tokenText.decode,
    };
    const [opts, r] = stageOptions(pkg, {
      loadTokenizer: () => {
        loads++;
        return Promise.resolve(tokenizer);
      },
    });
    const first = await stages.create(opts);
    try {
      await first.run({ requestId: 3, prompt: 'hello', maxNewTokens: MAX_NEW, sampling: GREEDY, stopTokens: [] });
      expect(loads).toBe(1);
      expect(encoded).toEqual([['hello', { chatTemplate: false }]]);
      expect(r.tokens.map((t) => t.tokenId)).toEqual(reference);
      // with the ids in the start, no tokenizer is loaded
      await first.run(startOf(4, { prompt: 'hello' }));
      expect(loads).toBe(1);
      expect(forRequest(r.tokens, 4).map((t) => t.tokenId)).toEqual(reference);
    } finally {
      await first.dispose();
    }
  });

  it("a cancel at the page's hold: run() rejects with request-cancelled, after the reports of the steps before it", async () => {
    const held: number[] = [];
    let holding: WorkerStage | null = null;
    let cancelling = true;
    const [opts, r] = stageOptions(pkg, {
      // the page holds the ring before each step (?hold=); before step 3 it cancels the request
      beforeStep: (generated) => {
        held.push(generated);
        if (generated === 3 && cancelling) holding?.cancel(8, 'cancelled by the test');
        return Promise.resolve();
      },
    });
    holding = await stages.create(opts);
    try {
      expect(await codeOf(holding.run(startOf(8)))).toBe('request-cancelled');
      expect(held).toEqual([0, 1, 2, 3]);
      // what the worker held back of steps 1 and 2 (decode reports wait up to 100 ms) came before the answer
      expect(forRequest(r.tokens, 8).map((t) => t.tokenId)).toEqual(reference.slice(0, 3));
      const computed = forRequest(r.phases, 8).filter((p) => p.phase === 'compute');
      expect(computed.map((p) => p.step)).toEqual([0, 1, 2]);
      // the stage runs the next request in full, on its kept session
      cancelling = false;
      held.length = 0;
      await holding.run(startOf(9));
      expect(held).toEqual([0, 1, 2, 3, 4]);
      expect(forRequest(r.tokens, 9).map((t) => t.tokenId)).toEqual(reference);
      expect(forRequest(r.phases, 9).map((p) => p.phase)).not.toContain('storage-read');
    } finally {
      await holding.dispose();
    }
  });

  it('errors cross as TandemErrors with their codes', async () => {
    expect(
      await codeOf(
        stage.run({ requestId: 5, prompt: 'x', maxNewTokens: 0, sampling: GREEDY, promptTokenIds: PROMPT_IDS }),
      ),
    ).toBe('request-invalid');
    expect(forRequest(rec.tokens, 5)).toEqual([]);
    // the stage still runs after a failed request
    await stage.run(startOf(6, { maxNewTokens: 2 }));
    expect(forRequest(rec.tokens, 6).map((t) => t.tokenId)).toEqual(reference.slice(0, 2));

    // embeds, but the first peer is another page's: StagePeer's constructor refuses it in the worker
    const [bad] = stageOptions(pkg, { assignment: { ...singleAssignment(manifest), firstPeerId: 'B' } });
    expect(await codeOf(stages.create(bad))).toBe('assignment-invalid');
    const [noHead] = stageOptions(pkg, { assignment: { ...singleAssignment(manifest), lastPeerId: 'B' } });
    expect(await codeOf(stages.create(noHead))).toBe('assignment-invalid');

    // a page that has not registered with PeerJS gets no stage
    const [opts] = stageOptions(pkg);
    const unused = new MessageChannel();
    try {
      expect(await codeOf(new WorkerStages(unused.port1).create(opts))).toBe('transport-missing');
    } finally {
      unused.port1.close();
    }
  });

  it('dispose(): the worker drops the stage; a later run rejects with stage-disposed', async () => {
    await stage.dispose();
    expect(
      await codeOf(
        stage.run({ requestId: 7, prompt: 'x', maxNewTokens: MAX_NEW, sampling: GREEDY, promptTokenIds: PROMPT_IDS }),
      ),
    ).toBe('stage-disposed');
    expect(forRequest(rec.tokens, 7)).toEqual([]);
    expect(await codeOf(stage.load())).toBe('stage-disposed');
  });
});
