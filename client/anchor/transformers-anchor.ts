/**
 * The baseline a one-laptop user would open instead of Tandem: transformers.js alone in one tab, on the
 * same weights (the package's `shards export-full` folder) and wasm thread count as a Tandem page, greedy.
 * transformers.js runs on the ORT build its own entry needs (onnxruntime-web/webgpu: the asyncify wasm,
 * served locally), as it would for a user; a Tandem page's wasm stages run on the CPU-only build. The bench (e2e/anchor-bench.ts) serves the export at /anchor-model/<id>/
 * and calls `window.tandemAnchor.run(...)`: a 1-token warm-up request, then a cold one (the model loaded
 * again from the same files), timed like Tandem's requests:
 *   load = from_pretrained; TTFT = load start -> first generated token; decode = (N - 1) / (t_N - t_1).
 */
import { AutoModelForCausalLM, AutoTokenizer, env, TextStreamer } from '@huggingface/transformers';
import { inferenceThreads, ORT_WASM_URL } from '../runtime/browser-runtime.ts';

export interface AnchorRequest {
  modelId: string;
  prompt: string;
  newTokens: number;
}

export interface AnchorRun {
  loadSec: number;
  /** load start -> first generated token */
  ttftSec: number;
  /** prefill: generate() call -> first generated token */
  firstTokenSec: number;
  /** (N - 1) / (t_N - t_1); null for a single token */
  decodeTokensPerSec: number | null;
  promptTokens: number;
  tokenIds: number[];
}

export interface AnchorResult {
  warmUp: AnchorRun;
  cold: AnchorRun;
  threads: number;
  userAgent: string;
}

function status(text: string): void {
  const el = document.getElementById('status');
  if (el) el.textContent = text;
}

async function request(o: AnchorRequest, newTokens: number): Promise<AnchorRun> {
  const t0 = performance.now();
  const tokenizer = await AutoTokenizer.from_pretrained(o.modelId);
  const model = await AutoModelForCausalLM.from_pretrained(o.modelId, { dtype: 'fp32', device: 'wasm' });
  const loaded = performance.now();
  try {
    const text = tokenizer.apply_chat_template<false>([{ role: 'user', content: o.prompt }], {
      tokenize: false,
      add_generation_prompt: true,
    });
    const inputs = tokenizer(text, { add_special_tokens: false });
    // each generated token's time as it is sampled; its text streamed as a page would show it
    const times: number[] = [];
    const streamer = new TextStreamer(tokenizer, {
      skip_prompt: true,
      skip_special_tokens: true,
      callback_function: () => undefined,
      token_callback_function: () => void times.push(performance.now()),
    });
    const called = performance.now();
    const out = (await model.generate({
      ...inputs,
      max_new_tokens: newTokens,
      min_new_tokens: newTokens,
      do_sample: false,
      streamer,
    })) as { tolist(): bigint[][] };
    const promptTokens = (inputs.input_ids as { dims: number[] }).dims[1];
    const tokenIds = out.tolist()[0].slice(promptTokens).map(Number);
    const first = times.at(0) ?? NaN;
    const last = times.at(-1) ?? NaN;
    return {
      loadSec: (loaded - t0) / 1000,
      ttftSec: (first - t0) / 1000,
      firstTokenSec: (first - called) / 1000,
      decodeTokensPerSec: times.length > 1 ? (times.length - 1) / ((last - first) / 1000) : null,
      promptTokens,
      tokenIds,
    };
  } finally {
    await model.dispose();
  }
}

async function run(o: AnchorRequest): Promise<AnchorResult> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = '/anchor-model/';
  env.useBrowserCache = false;
  env.useWasmCache = false;
  // the locally served wasm of the ORT entry transformers.js imports (never a CDN), Tandem's thread count
  const onnx = env.backends.onnx as { wasm?: { wasmPaths?: unknown; numThreads?: number } };
  const threads = inferenceThreads();
  if (onnx.wasm) {
    onnx.wasm.wasmPaths = { wasm: ORT_WASM_URL };
    onnx.wasm.numThreads = threads;
  }
  status('transformers.js anchor: warm-up request…');
  const warmUp = await request(o, 1);
  status('transformers.js anchor: cold request…');
  const cold = await request(o, o.newTokens);
  status(
    `transformers.js anchor: load ${cold.loadSec.toFixed(2)} s, TTFT ${cold.ttftSec.toFixed(2)} s, decode ${cold.decodeTokensPerSec?.toFixed(1) ?? '-'} tok/s`,
  );
  return { warmUp, cold, threads, userAgent: navigator.userAgent };
}

(globalThis as unknown as { tandemAnchor: { run: typeof run } }).tandemAnchor = { run };
