/**
 * The request body of `POST /v1/chat/completions` as Tandem accepts it, and OpenAI-format errors.
 *
 * Everything OpenAI defines that Tandem cannot honour (n > 1, tools, logprobs, images, penalties, ...)
 * is refused with HTTP 400 naming the parameter, never silently ignored; unknown fields are refused
 * too (as OpenAI does). Pure: zod only.
 */
import { z } from 'zod';
import type { ChatMessage } from './chat-tokenizer.ts';

/** The body of an OpenAI error response: `{ error: { message, type, param, code } }`. */
export interface OpenAiError {
  status: number;
  message: string;
  type:
    | 'invalid_request_error'
    | 'authentication_error'
    | 'not_found_error'
    | 'rate_limit_error'
    | 'server_error'
    | 'service_unavailable';
  param: string | null;
  code: string | null;
}

export function invalid(param: string | null, message: string, code = 'invalid_value'): OpenAiError {
  return { status: 400, type: 'invalid_request_error', param, code, message };
}

const textPart = z.strictObject({ type: z.literal('text'), text: z.string() });
const content = z.union([z.string(), z.array(textPart).min(1)]);

const messageSchema = z.discriminatedUnion('role', [
  z.strictObject({ role: z.literal('system'), content, name: z.string().optional() }),
  z.strictObject({ role: z.literal('developer'), content, name: z.string().optional() }),
  z.strictObject({ role: z.literal('user'), content, name: z.string().optional() }),
  z.strictObject({
    role: z.literal('assistant'),
    content,
    name: z.string().optional(),
    refusal: z.string().nullable().optional(),
  }),
]);

export const chatRequestSchema = z.strictObject({
  model: z.string().min(1).max(256),
  messages: z.array(messageSchema).min(1).max(1024),
  max_tokens: z.int().min(1).nullable().optional(),
  max_completion_tokens: z.int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  seed: z.int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  stop: z
    .union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).max(4)])
    .nullable()
    .optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.strictObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  user: z.string().max(256).optional(),
  // Accepted only at the value that means "off": anything else is a feature Tandem does not have.
  n: z.literal(1).nullable().optional(),
  logprobs: z.literal(false).nullable().optional(),
  presence_penalty: z.literal(0).nullable().optional(),
  frequency_penalty: z.literal(0).nullable().optional(),
  response_format: z
    .strictObject({ type: z.literal('text') })
    .nullable()
    .optional(),
  modalities: z
    .tuple([z.literal('text')])
    .nullable()
    .optional(),
  store: z.literal(false).nullable().optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  service_tier: z.enum(['auto', 'default']).nullable().optional(),
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;

/** Fields that name OpenAI features Tandem does not offer, with what to do instead. */
const UNSUPPORTED: Record<string, string> = {
  tools: 'tools (function calling) are not supported',
  tool_choice: 'tools (function calling) are not supported',
  functions: 'functions (function calling) are not supported',
  function_call: 'functions (function calling) are not supported',
  top_logprobs: 'logprobs are not supported',
  logit_bias: 'logit_bias is not supported',
  audio: 'audio output is not supported',
  prediction: 'predicted outputs are not supported',
  reasoning_effort: 'reasoning_effort is not supported',
  web_search_options: 'web search is not supported',
};

/** Parses a request body: the request, or the 400 error that names the first offending parameter. */
export function parseChatRequest(
  body: unknown,
): { ok: true; request: ChatRequest } | { ok: false; error: OpenAiError } {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return { ok: false, error: invalid(null, 'The request body must be a JSON object.') };
  for (const [field, why] of Object.entries(UNSUPPORTED))
    if (field in body && (body as Record<string, unknown>)[field] != null)
      return { ok: false, error: invalid(field, `${why} by Tandem; remove '${field}'.`, 'unsupported_parameter') };
  const parsed = chatRequestSchema.safeParse(body);
  if (parsed.success) return { ok: true, request: parsed.data };
  const issue = parsed.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0];
    const at = [...issue.path, key].map(String).join('.');
    return { ok: false, error: invalid(at, `Unrecognized request argument supplied: ${at}.`, 'unknown_parameter') };
  }
  const param = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
  return {
    ok: false,
    error: invalid(param || null, `Invalid '${param || 'body'}': ${explain(param, issue.message)}`, codeFor(param)),
  };
}

function codeFor(param: string): string {
  if (/^(n|logprobs|presence_penalty|frequency_penalty|response_format|modalities|store)\b/.test(param))
    return 'unsupported_value';
  if (/content/.test(param)) return 'unsupported_value';
  return 'invalid_value';
}

function explain(param: string, zodMessage: string): string {
  if (param === 'n') return 'Tandem generates one choice per request (n = 1).';
  if (param === 'logprobs') return 'logprobs are not supported.';
  if (param === 'presence_penalty' || param === 'frequency_penalty') return 'penalties are not supported (use 0).';
  if (param.startsWith('response_format')) return "only {type: 'text'} is supported.";
  if (/content/.test(param)) return `only text content is supported (${zodMessage}).`;
  if (/role/.test(param))
    return `${zodMessage}: roles are system, developer, user and assistant (tool messages need tools, which are not supported).`;
  return zodMessage;
}

/** The conversation as plain messages ('developer' is the newer name of 'system'). */
export function chatMessages(request: ChatRequest): ChatMessage[] {
  return request.messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
  }));
}

/** max_completion_tokens (newer) or max_tokens; null when neither is given. */
export function requestedMaxTokens(request: ChatRequest): { value: number; param: string } | null {
  if (request.max_completion_tokens != null)
    return { value: request.max_completion_tokens, param: 'max_completion_tokens' };
  if (request.max_tokens != null) return { value: request.max_tokens, param: 'max_tokens' };
  return null;
}
