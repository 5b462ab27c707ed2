/**
 * The OpenAI-compatible HTTP API on the access point, so any OpenAI client can use a Tandem session:
 *
 *   GET  /v1/models                the served packages, with the sessions that answer for them
 *   POST /v1/chat/completions      non-streaming, or streaming as server-sent events ending in [DONE]
 *
 * A request is rendered through the package's chat template and tokenised here, then queued on a
 * session that serves the API (its host switched it on, or --api-session named it) exactly like a
 * host's go: the pages show it, the last stage reports each sampled token to the coordinator, and the
 * coordinator's `api` events come back here to become OpenAI chunks. A client that disconnects cancels
 * its request on every page. Errors use OpenAI's format: { error: { message, type, param, code } }.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULT_MAX_POSITIONS } from '../shards/stage-graph.ts';
import { loadChatTokenizer, type ChatTokenizer } from './chat-tokenizer.ts';
import { CompletionText } from './completion-text.ts';
import type { ApiEvent, Coordinator } from './coordinator.ts';
import type { ModelPackage } from './model-route.ts';
import {
  chatMessages,
  parseChatRequest,
  requestedMaxTokens,
  invalid,
  type ChatRequest,
  type OpenAiError,
} from './openai-schema.ts';
import { MAX_NEW_TOKENS, type Sampling } from '../core/protocol.ts';
import { endEventStream, openEventStream, sendEvent } from './sse.ts';
import { sendJson } from './send-json.ts';
import type { WsGateway } from './ws-gateway.ts';

export interface ApiOptions {
  /** `Authorization: Bearer <key>` required when set (--api-key). */
  key: string | null;
  /** Browser origins allowed to call the API (CORS); '*' allows any (--api-cors). */
  corsOrigins: readonly string[];
}

/** Largest request body, bytes. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

type FinishReason = 'stop' | 'length';

interface Pending {
  ticket: number;
  id: string;
  created: number;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  res: ServerResponse;
  text: CompletionText;
  promptTokens: number;
  ended: boolean;
}

/** The answer to a request for a model this server does not serve. */
function modelNotFound(name: string): OpenAiError {
  return {
    status: 404,
    type: 'invalid_request_error',
    param: 'model',
    code: 'model_not_found',
    message: `The model '${name}' does not exist on this server; GET /v1/models lists the served packages.`,
  };
}

function sendError(res: ServerResponse, e: OpenAiError, headers: Record<string, string> = {}): void {
  sendJson(res, e.status, { error: { message: e.message, type: e.type, param: e.param, code: e.code } }, headers);
}

function keysEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export class OpenAiApi {
  private readonly pending = new Map<number, Pending>();
  private readonly tokenizers = new Map<string, Promise<ChatTokenizer>>();

  constructor(
    private readonly coordinator: Coordinator,
    private readonly gateway: WsGateway,
    private readonly models: readonly ModelPackage[],
    private readonly options: ApiOptions,
  ) {
    gateway.setApiListener((event) => this.onEvent(event));
  }

  /** Answers a request under /v1. */
  async serve(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const cors = this.corsHeaders(req);
    if (req.method === 'OPTIONS') {
      res.writeHead(cors['Access-Control-Allow-Origin'] ? 204 : 403, { ...cors, 'Content-Length': '0' });
      res.end();
      return;
    }
    for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);
    if (!this.authorised(req)) {
      sendError(res, {
        status: 401,
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
        message:
          'Incorrect or missing API key: send the key the Tandem server was started with (--api-key) as "Authorization: Bearer <key>".',
      });
      return;
    }
    if (pathname === '/v1/models' && req.method === 'GET') {
      sendJson(res, 200, { object: 'list', data: this.models.map((m) => this.modelEntry(m)) });
      return;
    }
    const modelMatch = /^\/v1\/models\/([^/]+)$/.exec(pathname);
    if (modelMatch && req.method === 'GET') {
      const name = decodeURIComponent(modelMatch[1]);
      const model = this.models.find((m) => m.name === name);
      if (!model) {
        sendError(res, modelNotFound(name));
        return;
      }
      sendJson(res, 200, this.modelEntry(model));
      return;
    }
    if (pathname === '/v1/chat/completions') {
      if (req.method !== 'POST') {
        sendError(
          res,
          {
            status: 405,
            type: 'invalid_request_error',
            param: null,
            code: 'method_not_allowed',
            message: 'Use POST for /v1/chat/completions.',
          },
          { Allow: 'POST, OPTIONS' },
        );
        return;
      }
      return this.chatCompletion(req, res).catch((error: unknown) => {
        if (!res.headersSent)
          sendError(res, {
            status: 500,
            type: 'server_error',
            param: null,
            code: 'internal',
            message: `Tandem failed on this request: ${(error as Error).message}`,
          });
        else res.destroy();
      });
    }
    sendError(res, {
      status: 404,
      type: 'invalid_request_error',
      param: null,
      code: 'unknown_url',
      message: `Tandem serves GET /v1/models and POST /v1/chat/completions, not ${req.method} ${pathname}.`,
    });
  }

  /** Requests that wait or run (tests and shutdown). */
  get openRequests(): number {
    return this.pending.size;
  }

  private modelEntry(m: ModelPackage) {
    const sessions = this.coordinator.apiSessions().filter((s) => s.model === m.name);
    return {
      id: m.name,
      object: 'model' as const,
      created: 0,
      owned_by: 'tandem',
      // No join codes: a code lets its reader join the session (docs/security.md). Counts only.
      sessions: sessions.map((s) => ({ running: s.running, waiting: s.waiting, queue_depth: s.queueDepth })),
    };
  }

  private authorised(req: IncomingMessage): boolean {
    const key = this.options.key;
    if (key === null) return true;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    return m !== null && keysEqual(m[1].trim(), key);
  }

  private corsHeaders(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    const allowed = this.options.corsOrigins;
    if (!origin || allowed.length === 0 || !(allowed.includes('*') || allowed.includes(origin))) return {};
    return {
      'Access-Control-Allow-Origin': allowed.includes('*') ? '*' : origin,
      'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
      'Access-Control-Allow-Headers':
        'Authorization, Content-Type, OpenAI-Organization, OpenAI-Project, X-Stainless-Arch, X-Stainless-Lang, X-Stainless-OS, X-Stainless-Package-Version, X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Retry-Count, X-Stainless-Timeout',
      'Access-Control-Max-Age': '600',
      // the page's isolation headers say same-origin; the API is meant for other origins
      'Cross-Origin-Resource-Policy': 'cross-origin',
      Vary: 'Origin',
    };
  }

  private tokenizerFor(model: ModelPackage): Promise<ChatTokenizer> {
    let t = this.tokenizers.get(model.name);
    if (!t) {
      t = loadChatTokenizer(model.dir);
      this.tokenizers.set(model.name, t);
      t.catch(() => this.tokenizers.delete(model.name));
    }
    return t;
  }

  private async chatCompletion(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (body === null) {
      sendError(res, {
        status: 413,
        type: 'invalid_request_error',
        param: null,
        code: 'request_too_large',
        message: `The request body is over ${MAX_BODY_BYTES} bytes.`,
      });
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      sendError(res, invalid(null, 'The request body is not valid JSON.', 'invalid_json'));
      return;
    }
    const parsed = parseChatRequest(json);
    if (!parsed.ok) {
      sendError(res, parsed.error);
      return;
    }
    const request = parsed.request;
    const model = this.models.find((m) => m.name === request.model);
    if (!model) {
      sendError(res, modelNotFound(request.model));
      return;
    }
    const session = this.coordinator
      .apiSessions()
      .filter((s) => s.model === model.name)
      .sort((a, b) => a.waiting + Number(a.running) - (b.waiting + Number(b.running)))
      .at(0);
    if (!session) {
      sendError(res, {
        status: 503,
        type: 'service_unavailable',
        param: null,
        code: 'no_session',
        message: `No Tandem session serves the API for '${model.name}' now: the host turns on "Serve the API" in the session's host controls, or the server is started with --api-session <join code>.`,
      });
      return;
    }

    const tokenizer = await this.tokenizerFor(model);
    const promptTokenIds = tokenizer.encodeChat(chatMessages(request));
    const positions = Math.min(
      model.manifest.config.max_position_embeddings ?? DEFAULT_MAX_POSITIONS,
      DEFAULT_MAX_POSITIONS,
    );
    const room = positions - promptTokenIds.length + 1;
    const asked = requestedMaxTokens(request);
    if (room < 1 || (asked && asked.value > room)) {
      sendError(
        res,
        invalid(
          room < 1 ? 'messages' : asked!.param,
          `This model's pipeline holds ${positions} positions; the messages take ${promptTokenIds.length} tokens${asked ? ` and ${asked.value} new tokens were asked for` : ''}. Shorten the messages or lower ${asked?.param ?? 'max_tokens'}.`,
          'context_length_exceeded',
        ),
      );
      return;
    }
    if (asked && asked.value > MAX_NEW_TOKENS) {
      sendError(res, invalid(asked.param, `At most ${MAX_NEW_TOKENS} new tokens per request.`));
      return;
    }
    const maxNewTokens = asked?.value ?? Math.min(MAX_NEW_TOKENS, room);

    const { outcome, effects } = this.coordinator.submitApi(
      {
        sessionCode: session.code,
        displayPrompt: displayPrompt(request),
        promptTokenIds,
        maxNewTokens,
        sampling: samplingOf(request),
      },
      Date.now(),
    );
    if (!outcome.ok) {
      if (outcome.code === 'queue-full') {
        sendError(
          res,
          {
            status: 429,
            type: 'rate_limit_error',
            param: null,
            code: 'queue_full',
            message: `The serving session has ${session.queueDepth} requests waiting already (one runs at a time); retry after ${outcome.retryAfterSeconds} s.`,
          },
          { 'Retry-After': String(outcome.retryAfterSeconds) },
        );
        return;
      }
      sendError(res, {
        status: 503,
        type: 'service_unavailable',
        param: null,
        code: 'no_session',
        message: 'The serving session ended; retry to use another.',
      });
      return;
    }
    const pending: Pending = {
      ticket: outcome.ticket,
      id: `chatcmpl-${randomBytes(12).toString('hex')}`,
      created: Math.floor(Date.now() / 1000),
      model: model.name,
      stream: request.stream === true,
      includeUsage: request.stream_options?.include_usage === true,
      res,
      text: new CompletionText((ids) => tokenizer.decode(ids), stopsOf(request)),
      promptTokens: promptTokenIds.length,
      ended: false,
    };
    this.pending.set(pending.ticket, pending);
    // The client hung up before the answer was complete: stop the request on every page.
    res.on('close', () => {
      if (pending.ended) return;
      pending.ended = true;
      this.pending.delete(pending.ticket);
      this.gateway.apply(this.coordinator.cancelApi(pending.ticket, 'the API client disconnected', Date.now()));
    });
    if (pending.stream) {
      openEventStream(res, { 'X-Request-Id': pending.id });
      sendEvent(res, this.chunk(pending, { role: 'assistant', content: '' }, null));
    }
    this.gateway.apply(effects);
  }

  private onEvent(event: ApiEvent): void {
    const p = this.pending.get(event.ticket);
    if (!p || p.ended) return;
    switch (event.type) {
      case 'started':
        return;
      case 'tokens': {
        const step = p.text.push(event.tokenIds);
        if (step.delta && p.stream) sendEvent(p.res, this.chunk(p, { content: step.delta }, null));
        if (step.stopped) {
          this.finish(p, 'stop');
          this.gateway.apply(this.coordinator.cancelApi(p.ticket, 'a stop sequence matched', Date.now()));
          return;
        }
        if (!event.done) return;
        if (event.finishReason === 'error') {
          this.fail(p, 'pipeline_failed', 'The pipeline reported an error while generating.');
          return;
        }
        const rest = p.text.finish();
        if (rest && p.stream) sendEvent(p.res, this.chunk(p, { content: rest }, null));
        this.finish(p, event.finishReason === 'max-tokens' ? 'length' : 'stop');
        return;
      }
      case 'failed': {
        this.fail(p, event.code.replace(/-/g, '_'), `The request failed on the Tandem session: ${event.message}`);
        return;
      }
    }
  }

  private finish(p: Pending, reason: FinishReason): void {
    p.ended = true;
    this.pending.delete(p.ticket);
    const usage = {
      prompt_tokens: p.promptTokens,
      completion_tokens: p.text.tokenCount,
      total_tokens: p.promptTokens + p.text.tokenCount,
    };
    if (p.stream) {
      sendEvent(p.res, this.chunk(p, {}, reason));
      if (p.includeUsage)
        sendEvent(p.res, {
          id: p.id,
          object: 'chat.completion.chunk',
          created: p.created,
          model: p.model,
          choices: [],
          usage,
        });
      endEventStream(p.res);
      return;
    }
    sendJson(
      p.res,
      200,
      {
        id: p.id,
        object: 'chat.completion',
        created: p.created,
        model: p.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: p.text.text, refusal: null },
            logprobs: null,
            finish_reason: reason,
          },
        ],
        usage,
      },
      { 'X-Request-Id': p.id },
    );
  }

  private fail(p: Pending, code: string, message: string): void {
    p.ended = true;
    this.pending.delete(p.ticket);
    const error: OpenAiError = { status: 502, type: 'server_error', param: null, code, message };
    if (p.stream) {
      // Headers are out already: OpenAI streams report a late failure as an error event.
      sendEvent(p.res, { error: { message, type: error.type, param: null, code } });
      endEventStream(p.res);
    } else sendError(p.res, error);
  }

  private chunk(p: Pending, delta: { role?: 'assistant'; content?: string }, finishReason: FinishReason | null) {
    return {
      id: p.id,
      object: 'chat.completion.chunk',
      created: p.created,
      model: p.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...(p.includeUsage ? { usage: null } : {}),
    };
  }
}

/** OpenAI defaults: temperature 1, top_p 1; no seed = a random one. temperature 0 is greedy. */
function samplingOf(r: ChatRequest): Sampling {
  const seed = r.seed ?? randomBytes(4).readUInt32LE(0);
  return { temperature: r.temperature ?? 1, topK: 0, topP: r.top_p ?? 1, seed: ((seed % 2 ** 32) + 2 ** 32) % 2 ** 32 };
}

function stopsOf(r: ChatRequest): string[] {
  if (r.stop == null) return [];
  return typeof r.stop === 'string' ? [r.stop] : r.stop;
}

/** What the pages show as the request's prompt: the last user message, marked as an API request. */
function displayPrompt(r: ChatRequest): string {
  const messages = chatMessages(r);
  const lastUser = [...messages].reverse().find((m) => m.role === 'user') ?? messages[messages.length - 1];
  return `[API] ${lastUser.content}`.slice(0, 16_000);
}
