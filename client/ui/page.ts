/**
 * The page's view: builds the static layout once (so inputs keep focus and text), and re-renders the
 * dynamic parts from the App's state on every change.
 */
import { unitsForStage, type TimingEntry } from '../../core/protocol.ts';
import type { App } from '../app/app.ts';
import { joinLink } from '../app/url-params.ts';
import { h, fill, update, svg } from './dom.ts';
import { formatBytes, formatDuration, formatLayers } from './format.ts';
import { renderProfile } from './profile-view.ts';
import { renderRoster } from './roster-view.ts';
import { renderTimeline } from './timeline.ts';
import { renderCalibration, renderWhatIf } from './calibration-view.ts';
import { renderRecoveryLine, renderRecoveryStrip } from './recovery-view.ts';
import { recoveryOf } from '../app/failover-view-state.ts';
import { qrSvg } from './qr.ts';

function card(title: string, id: string, ...body: HTMLElement[]): HTMLElement {
  return h('section.card', { id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title` }, title), ...body);
}

/**
 * One part of the page that is re-filled only when a state value it shows changed (the state is
 * immutable, so identity says "changed"): while a request decodes, the state changes with every phase
 * and token, and rebuilding every part each frame (DOM, style, layout) kept the main thread busy
 * between the stage's steps.
 */
function part(): (deps: readonly unknown[], paint: () => void) => void {
  let last: readonly unknown[] | null = null;
  return (deps, paint) => {
    const prev = last;
    if (prev && deps.length === prev.length && deps.every((d, i) => Object.is(d, prev[i]))) return;
    last = deps;
    paint();
  };
}

/** During a decode, the timeline is laid out again at most this often, ms. */
const TIMELINE_DECODE_MS = 500;

function download(filename: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const a = h('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function numberInput(id: string, value: number, min: number, max: number, step: number): HTMLInputElement {
  return h('input', { id, type: 'number', inputmode: 'decimal', value, min, max, step });
}

function labelled(text: string, control: HTMLElement, hint?: string): HTMLElement {
  return h(
    'label.field',
    { for: control.id },
    h('span.field-label', {}, text),
    control,
    hint ? h('span.field-hint', {}, hint) : null,
  );
}

export function mountPage(root: HTMLElement, app: App): void {
  // ---- header and banners
  const connPill = h('span.pill', { id: 'connection' });
  const nameInput = h('input', {
    id: 'display-name',
    type: 'text',
    maxlength: 40,
    autocomplete: 'nickname',
    'aria-label': 'Your device name',
  });
  nameInput.addEventListener('change', () => app.dispatch({ type: 'name-changed', raw: nameInput.value }));
  const header = h(
    'header.topbar',
    {},
    h('div.brand', {}, logo(), h('span', {}, 'Tandem')),
    h('div.topbar-right', {}, nameInput, connPill),
  );
  const banners = h('div.banners', { id: 'banners', role: 'alert', 'aria-live': 'assertive' });

  // ---- join / session
  const codeInput = h('input', {
    id: 'join-code',
    type: 'text',
    inputmode: 'text',
    autocapitalize: 'characters',
    autocomplete: 'off',
    spellcheck: 'false',
    maxlength: 12,
    placeholder: 'e.g. K7Q2MN0P',
    'aria-label': 'Join code',
  });
  const joinBtn = h('button.btn.btn-primary', { id: 'join-btn', type: 'submit' }, 'Join');
  const createBtn = h('button.btn', { id: 'create-btn', type: 'button' }, 'Create a session (host)');
  const joinForm = h('form.join-form', {}, codeInput, joinBtn);
  joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    app.dispatch({ type: 'join-requested', rawCode: codeInput.value });
  });
  createBtn.addEventListener('click', () => app.dispatch({ type: 'create-requested' }));
  const joinPanel = h(
    'div#join-panel',
    {},
    h('p', {}, "Enter the code shown on the host's screen, or start a session here and let others join you."),
    joinForm,
    h('div.or', {}, 'or'),
    createBtn,
  );
  const sessionPanel = h('div#session-panel', {});
  const sessionCard = card('Session', 'session', joinPanel, sessionPanel);

  // ---- this device
  const profileBody = h('div#profile-body', {});
  const reprofileBtn = h('button.btn.btn-small', { type: 'button', id: 'reprofile-btn' }, 'Measure again');
  reprofileBtn.addEventListener('click', () => app.dispatch({ type: 'reprofile-requested' }));
  const profileDl = h('button.btn.btn-small', { type: 'button', id: 'profile-download' }, 'Download JSON');
  profileDl.addEventListener('click', () =>
    download(`tandem-profile-${app.state.displayName.replace(/[^A-Za-z0-9_-]+/g, '_')}.json`, app.profileJson()),
  );
  const deviceCard = card('This device', 'device', profileBody, h('div.actions', {}, reprofileBtn, profileDl));

  // ---- my stage (assignment + cache)
  const stageBody = h('div#stage-body', {});
  const clearBtn = h('button.btn.btn-small', { type: 'button', id: 'clear-cache' }, 'Clear cached layers');
  clearBtn.addEventListener('click', () => app.dispatch({ type: 'clear-cache-requested' }));
  const stageCard = card('My stage', 'stage', stageBody, h('div.actions', {}, clearBtn));

  // ---- host controls
  const tokensInput = numberInput('plan-tokens', 256, 1, 131072, 1);
  const methodSelect = h(
    'select',
    { id: 'plan-method' },
    h('option', { value: 'dp' }, 'Optimal (DP)'),
    h('option', { value: 'even' }, 'Even split'),
    h('option', { value: 'heuristic' }, 'Heuristic'),
    h('option', { value: 'single' }, 'Single device'),
  );
  // warm mode: pages load their stage at plan time; off = the cold start the planner optimises
  const warmToggle = h('input', { id: 'plan-warm', type: 'checkbox' });
  const warmRow = h(
    'label.field.field-check',
    { for: 'plan-warm' },
    warmToggle,
    h(
      'span',
      {},
      'Warm: pages load their stage when planned (a request then skips the load; predictions stay cold-start)',
    ),
  );
  const planBtn = h('button.btn.btn-primary', { id: 'plan-btn', type: 'button' }, 'Plan');
  planBtn.addEventListener('click', () =>
    app.dispatch({
      type: 'plan-requested',
      tokens: Math.max(1, Math.round(Number(tokensInput.value) || 256)),
      method: methodSelect.value as 'dp',
      warm: warmToggle.checked,
    }),
  );
  const promptInput = h('textarea', { id: 'prompt', rows: 3, maxlength: 16000, placeholder: 'Ask something…' });
  promptInput.value = 'The capital of France is';
  const maxNewInput = numberInput('max-new-tokens', 32, 1, 4096, 1);
  const tempInput = numberInput('temperature', 0, 0, 10, 0.1);
  const topKInput = numberInput('top-k', 0, 0, 1000000, 1);
  const topPInput = numberInput('top-p', 1, 0.01, 1, 0.01);
  const seedInput = numberInput('seed', 42, 0, 4294967295, 1);
  const goBtn = h('button.btn.btn-go', { id: 'go-btn', type: 'button' }, 'Go ▶');
  goBtn.addEventListener('click', () => {
    const num = (el: HTMLInputElement, dflt: number) =>
      Number.isFinite(Number(el.value)) && el.value !== '' ? Number(el.value) : dflt;
    app.dispatch({
      type: 'go-requested',
      prompt: promptInput.value.trim(),
      maxNewTokens: Math.min(4096, Math.max(1, Math.round(num(maxNewInput, 32)))),
      sampling: {
        temperature: Math.max(0, num(tempInput, 0)),
        topK: Math.max(0, Math.round(num(topKInput, 0))),
        topP: Math.min(1, Math.max(0.01, num(topPInput, 1))),
        seed: Math.max(0, Math.round(num(seedInput, 0))) >>> 0,
      },
    });
  });
  // stops the request that runs, on every page (an API client's too: it is told the host stopped it)
  const stopBtn = h('button.btn.btn-danger', { id: 'stop-btn', type: 'button' }, 'Stop ■');
  stopBtn.addEventListener('click', () => app.dispatch({ type: 'stop-requested' }));
  const apiToggle = h('input', { id: 'serve-api', type: 'checkbox' });
  apiToggle.addEventListener('change', () => app.dispatch({ type: 'serve-api-requested', serve: apiToggle.checked }));
  const apiRow = h(
    'label.field.field-check',
    { for: 'serve-api' },
    apiToggle,
    h(
      'span',
      {},
      'Serve the API: OpenAI clients can send prompts to this session at ',
      h('code', {}, `${location.origin}/v1`),
      ' (they queue with yours)',
    ),
  );
  const planSummary = h('div#plan-summary', {});
  const endBtn = h('button.btn.btn-small.btn-danger', { type: 'button', id: 'end-btn' }, 'End session');
  endBtn.addEventListener('click', () => {
    app.dispatch({ type: 'end-requested' });
  });
  const hostCard = card(
    'Host controls',
    'host',
    h(
      'div.control-row',
      {},
      labelled('Prompt length to plan for (tokens)', tokensInput),
      labelled('Plan method', methodSelect),
      h('div.field.field-button', {}, planBtn),
    ),
    warmRow,
    planSummary,
    labelled('Prompt', promptInput),
    h(
      'div.control-row',
      {},
      labelled('Max new tokens', maxNewInput),
      labelled('Temperature', tempInput, '0 = greedy'),
      labelled('Top-k', topKInput, '0 = off'),
      labelled('Top-p', topPInput),
      labelled('Seed', seedInput),
    ),
    h('div.actions', {}, goBtn, stopBtn, endBtn),
    apiRow,
  );

  // ---- roster, output, timeline
  const rosterBody = h('div#roster-body', {});
  const rosterCard = card('Peers', 'peers', rosterBody);
  const outputBody = h('div#output-body', { 'aria-live': 'polite' });
  const outputCard = card('Output', 'output', outputBody);
  const timelineBody = h('div#timeline-body', {});
  const recoveryBody = h('div#recovery-body', {}); // failover: loss, repair plan, replay (recovery-view.ts)
  const sessionDl = h('button.btn.btn-small', { type: 'button', id: 'session-download' }, 'Download timings JSON');
  sessionDl.addEventListener('click', () =>
    download(`tandem-session-${app.state.code ?? 'none'}.json`, app.sessionJson()),
  );
  const timelineCard = card(
    'Cold start timeline — predicted vs measured',
    'timeline',
    recoveryBody,
    timelineBody,
    h('div.actions', {}, sessionDl),
  );

  const calibrationBody = h('div#calibration-body', {});
  const calibrationCard = card('Calibration — each phase predicted vs measured', 'calibration', calibrationBody);

  const grid = h(
    'main.grid',
    {},
    sessionCard,
    hostCard,
    outputCard,
    timelineCard,
    calibrationCard,
    stageCard,
    rosterCard,
    deviceCard,
  );
  fill(root, header, banners, grid);

  let lastTimelineKey = '';
  let lastWidth = 0;
  let lastTimelineAt = 0;
  let lastTimelineRequest: number | null = null;
  let timelineLater: ReturnType<typeof setTimeout> | null = null;
  const [bannersPart, sessionPart, planPart, calibrationPart, stagePart, profilePart, rosterPart, outputPart] =
    Array.from({ length: 8 }, part);
  const recoveryPart = part();
  const headerPart = part();
  /**
   * The timeline's width, from a ResizeObserver: reading clientWidth in a render, after other parts were
   * re-filled, forced a layout of the whole page inside the render's task (seen in a cold-start trace).
   */
  let timelineWidth = 0;
  if (typeof ResizeObserver === 'function')
    new ResizeObserver((entries) => {
      const w = entries.at(-1)?.contentRect.width ?? 0;
      if (Math.abs(w - timelineWidth) <= 4) return;
      timelineWidth = w;
      app.changed();
    }).observe(timelineBody);
  const render = () => {
    // the state is immutable: read the current one on every render
    const s = app.state;
    // header
    headerPart([s.displayName, s.code, s.connection], () => {
      if (document.activeElement !== nameInput) nameInput.value = s.displayName;
      // the name is sent with `join`; changing it later would not reach the others
      nameInput.disabled = s.code !== null;
      nameInput.title = s.code !== null ? 'Your name in this session' : 'Your device name (set it before joining)';
      connPill.textContent =
        s.connection === 'open'
          ? s.code
            ? `● ${s.code}`
            : '● connected'
          : s.connection === 'reconnecting'
            ? '● server gone — retrying'
            : s.connection === 'connecting'
              ? '○ connecting'
              : s.connection === 'idle'
                ? '○ ready'
                : '○ offline';
      connPill.className = `pill pill-${s.connection}`;
    });
    const emulated = s.params?.emulation;
    document.body.classList.toggle('is-emulated', Boolean(emulated));

    // banners
    bannersPart([s.errors], () =>
      update(
        banners,
        s.errors.map((e, i) =>
          e.dismissed
            ? null
            : h(
                'div.banner',
                { 'data-code': e.code, class: `banner banner-${e.level}` },
                h('span.banner-code', {}, e.code),
                h('span.banner-msg', {}, e.message),
                h(
                  'button.banner-close',
                  {
                    type: 'button',
                    'aria-label': 'Dismiss',
                    onclick: () => app.dispatch({ type: 'error-dismissed', index: i }),
                  },
                  '×',
                ),
              ),
        ),
      ),
    );

    // session
    joinPanel.hidden = s.code !== null;
    sessionPart([s.code, s.role, s.sessionName, s.model, emulated], () => {
      if (s.code) {
        const link = joinLink(location.href, s.code);
        update(
          sessionPanel,
          h(
            'div.join-code',
            { id: 'session-code', 'aria-label': 'Join code' },
            s.code.slice(0, 4),
            h('span.code-gap', {}),
            s.code.slice(4),
          ),
          s.role === 'host'
            ? h('div.qr-wrap', {}, qrSvg(link, `QR code of ${link}`), h('p.hint', {}, 'Scan to join'))
            : null,
          h(
            'p.join-how',
            {},
            s.role === 'host' ? 'On each phone or laptop, open ' : 'Others join with ',
            h('a.join-link', { href: link, id: 'join-link' }, link),
            h('br'),
            "or open this server's page and type the code.",
          ),
          h(
            'p.hint',
            {},
            `${s.sessionName ?? ''} · model ${s.model?.name ?? '…'} · you are ${s.role === 'host' ? 'the host' : 'a peer'}${emulated ? ` · emulated (${emulated.label})` : ''}`,
          ),
        );
      } else update(sessionPanel);
    });

    // host
    hostCard.hidden = s.role !== 'host';
    planPart([s.plan], () => {
      if (s.plan) {
        const p = s.plan;
        update(
          planSummary,
          h(
            'p.plan-line',
            {},
            `Plan ${p.method.toUpperCase()} for ${p.tokens} tokens: predicted cold start T = `,
            h('strong', {}, formatDuration(p.predictedLatency)),
          ),
          h(
            'ol.plan-stages',
            {},
            ...p.stages.map((st) =>
              h(
                'li',
                {},
                h('strong', {}, st.displayName),
                ` ${formatLayers(st.layers)}${st.embeds ? ' + embed' : ''}${st.hasHead ? ' + head' : ''} — load ${formatDuration(st.load)}, compute ${formatDuration(st.compute)}`,
              ),
            ),
          ),
          p.excludedPeerIds.length ? h('p.hint', {}, `${p.excludedPeerIds.length} device(s) left out.`) : null,
          renderWhatIf(p.whatIf, p.method),
        );
      } else update(planSummary, h('p.hint', {}, 'Plan once every device has profiled itself.'));
    });
    // a go while a request runs waits in the session's queue; only our own stage gates the button
    goBtn.disabled = !s.plan || s.stage.state === 'running';
    stopBtn.disabled = !s.outputs.some((o) => !o.done);
    apiToggle.checked = s.serveApi;
    planBtn.disabled = s.roster.every((p) => !p.profile);

    calibrationPart([s.calibration], () => update(calibrationBody, renderCalibration(s.calibration)));

    // stage
    stagePart([s.code, s.excluded, s.spare, s.assignment, s.cache, s.roster, s.stage], () =>
      update(stageBody, renderStage(app)),
    );

    // device
    profilePart([s.profileProgress, s.profile, s.profileSent], () =>
      update(profileBody, renderProfile(s.profileProgress, s.profile, s.profileSent)),
    );
    reprofileBtn.disabled = !s.profile || s.stage.state === 'running';
    profileDl.disabled = !s.profile;

    // roster
    rosterPart([s.roster, s.peerId, s.plan], () => {
      const stageUnits = new Map<string, string[]>();
      for (const st of s.plan?.stages ?? []) stageUnits.set(st.peerId, unitsForStage(st.layers, st.embeds, st.hasHead));
      update(
        rosterBody,
        renderRoster(s.roster, s.peerId, (id) => stageUnits.get(id) ?? null),
      );
    });

    // output
    const out = s.outputs.at(-1);
    outputPart([out, s.failover], () =>
      update(
        outputBody,
        out
          ? h(
              'div.output',
              {},
              out.prompt ? h('p.output-prompt', {}, out.prompt) : null,
              h('p.output-text', { id: 'output-text' }, out.text || (out.done ? '' : '…')),
              renderRecoveryLine(recoveryOf(s.failover, out.requestId)),
              h(
                'p.hint',
                {},
                `request ${out.requestId} · ${out.tokenIds.length} tokens${out.done ? ` · done (${out.finishReason ?? 'finished'})` : ' · generating'}`,
              ),
            )
          : h('p.hint', {}, 'The generated text appears here on every page.'),
      ),
    );

    recoveryPart([out?.requestId, s.failover], () =>
      update(recoveryBody, out ? renderRecoveryStrip(recoveryOf(s.failover, out.requestId)) : null),
    );

    // timeline (re-laid out only when data or width changed)
    const reqId = out?.requestId ?? null;
    const stages =
      (reqId !== null ? s.requestStages.get(reqId) : undefined) ?? s.plan?.stages ?? s.assignment?.stages ?? [];
    const measured = (reqId !== null ? s.timings.get(reqId) : undefined) ?? new Map<string, TimingEntry[]>();
    const clocks = reqId !== null ? s.clocks.get(reqId) : undefined;
    // a page's clock bound may come in a report of no new phases: it changes the hops line all the same
    const key = `${reqId}:${stages.map((x) => `${x.peerId}${x.finishTime}`).join()}:${[...measured.values()].reduce((n, v) => n + v.length, 0)}:${[...(clocks ?? [])].join()}`;
    // while tokens come, new phases arrive every few ms: the chart follows at most every
    // TIMELINE_DECODE_MS (a trailing render shows the last ones), and at once when the output is done
    const sinceLast = performance.now() - lastTimelineAt;
    const decoding = out !== undefined && !out.done && reqId === lastTimelineRequest;
    // A stage's page leaves the chart as it is while its own stage loads and prefills: there each
    // rebuild of the SVG chart it had then (hundreds of nodes, then style and paint) held the main thread
    // 60-250 ms on a 0.4-core lab device, in the CPU the stage was using, and a frame of the canvas that
    // replaced it still waits on the same quota (until session 26 a single stage's page redrew its chart
    // through its load; one such page drew a 68 ms frame in a cold request). The phase that hands the
    // prefill on (a single stage: its first token) redraws it; the stage's card tells the load meanwhile.
    const ownStageBusy = s.stage.state === 'running' && !prefillDone(measured.get(s.peerId ?? ''));
    const deferred = key !== lastTimelineKey && (ownStageBusy || (decoding && sinceLast < TIMELINE_DECODE_MS));
    if (deferred && !ownStageBusy)
      timelineLater ??= setTimeout(() => {
        timelineLater = null;
        app.changed();
      }, TIMELINE_DECODE_MS - sinceLast);
    const width = timelineWidth || lastWidth;
    if (!deferred && (key !== lastTimelineKey || Math.abs(width - lastWidth) > 4)) {
      lastTimelineKey = key;
      lastWidth = width;
      lastTimelineAt = performance.now();
      lastTimelineRequest = reqId;
      if (stages.length)
        renderTimeline(timelineBody, {
          stages,
          measured,
          clocks,
          decodeSteps: 3,
          width,
        });
      else
        update(
          timelineBody,
          h(
            'p.hint',
            {},
            'After "Plan", the predicted timeline of every stage appears here; after "Go", the measured one beside it.',
          ),
        );
    }
  };
  app.onChange(render);
  // without a ResizeObserver the width is read on a resize, between renders (no DOM change pending)
  if (typeof ResizeObserver !== 'function')
    window.addEventListener('resize', () => {
      timelineWidth = timelineBody.clientWidth;
      app.changed();
    });
  render();
}

function logo(): SVGSVGElement {
  // two linked rings: devices working in tandem
  return svg(
    'svg',
    { viewBox: '0 0 32 20', width: 34, height: 22, 'aria-hidden': 'true', class: 'logo' },
    svg('circle', { cx: 10, cy: 10, r: 7, fill: 'none', stroke: '#60a5fa', 'stroke-width': 3 }),
    svg('circle', { cx: 22, cy: 10, r: 7, fill: 'none', stroke: '#34d399', 'stroke-width': 3 }),
  );
}

function renderStage(app: App): HTMLElement {
  const s = app.state;
  const a = s.assignment;
  const c = s.cache;
  if (!s.code) return h('p.hint', {}, 'Join a session first.');
  if (s.excluded)
    return h(
      'div',
      {},
      h('p', {}, 'This device is not part of the current plan: ', h('em', {}, s.excluded.reason)),
      // a spare: a warm copy of a stage, so that a repair after that stage's loss skips the download
      s.spare ? h('p.hint', {}, s.spare.label) : null,
    );
  if (!a)
    return h(
      'p.hint',
      {},
      `Waiting for the host to plan.${c.cachedUnits.length ? ` ${c.cachedUnits.length} units of ${c.packageName} already cached here.` : ''}`,
    );
  const p = c.progress;
  const pct = p && p.bytesTotal > 0 ? Math.round((100 * p.bytesDone) / p.bytesTotal) : c.state === 'complete' ? 100 : 0;
  const neighbours = [
    a.predecessorPeerId ? `after ${nameOf(app, a.predecessorPeerId)}` : 'first stage (tokenizes + embeds)',
    a.successorPeerId ? `before ${nameOf(app, a.successorPeerId)}` : 'last stage (head + sampling)',
  ];
  return h(
    'div.stage',
    {},
    h(
      'p.stage-line',
      {},
      h('strong', {}, `Stage ${a.stageIndex + 1} of ${a.stageCount}: ${formatLayers(a.layers)}`),
      `${a.embeds ? ' + embedding' : ''}${a.hasHead ? ' + LM head' : ''}`,
    ),
    h('p.hint', {}, neighbours.join(' · ')),
    h('p.hint', {}, 'Keep this tab open and in front until the request is done: the other devices wait for this one.'),
    h(
      'div.progress',
      {
        role: 'progressbar',
        'aria-valuenow': pct,
        'aria-valuemin': 0,
        'aria-valuemax': 100,
        'aria-label': 'Layer download',
      },
      h('div.progress-bar', {
        style: `transform:scaleX(${pct / 100})`,
        class: `progress-bar${c.state === 'error' ? ' progress-error' : ''}`,
      }),
    ),
    h(
      'p.cache-line',
      { id: 'cache-state', 'data-state': c.state },
      c.state === 'fetching' && p
        ? `Downloading ${p.unitsDone}/${p.unitsTotal} units · ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}${p.unitId ? ` · ${p.unitId}` : ''}`
        : c.state === 'complete'
          ? `✓ ${a.units.length} units ready in this browser's storage (verified SHA-256) · downloaded ${c.fetchedUnits.length}, reused ${c.reusedUnits.length}`
          : c.state === 'error'
            ? 'Caching failed — see the banner above.'
            : 'Checking the cache…',
    ),
    h(
      'p.stage-state',
      { 'data-state': s.stage.state },
      `Stage: ${s.stage.state}${s.stage.backend ? ` on ${s.stage.backend}` : ''}${s.stage.place ? (s.stage.place === 'worker' ? ' in the inference worker' : ' on the main thread') : ''}${s.stage.detail ? ` · ${s.stage.detail}` : ''}${(s.stage.loadedInParts ?? 1) > 1 ? ` · loaded in ${s.stage.loadedInParts} parts, each created while the next was read` : ''}`,
    ),
    // the render pacer draws a ring stage's page once a second: say why the text comes in steps
    s.stage.state === 'running' && a.stages.length > 1
      ? h(
          'p.hint',
          {},
          'While this device computes in the ring, this page refreshes once a second, and the timeline waits until this stage has handed its prefill on.',
        )
      : null,
  );
}

function nameOf(app: App, peerId: string): string {
  return app.state.roster.find((p) => p.peerId === peerId)?.displayName ?? peerId;
}

/** Whether a stage's own phases show its prefill done: handed on, or (the last stage) its first token sampled. */
function prefillDone(timings: readonly TimingEntry[] | undefined): boolean {
  return (timings ?? []).some((t) => t.step === 0 && (t.phase === 'egress' || t.phase === 'sample'));
}
