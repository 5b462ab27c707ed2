/**
 * client/ui/dom.ts's `update` in a real Chromium: its result is the DOM `fill` gives (plain replacement,
 * the reference), and it touches no node whose content did not change.
 */
import { readFileSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumArgs } from './browser.ts';
import { prepareE2e, skipBanner } from './environment.ts';

/** dom.ts as an ES module the page can import (it imports nothing). */
function domModuleJs(): string {
  const src = readFileSync(new URL('../client/ui/dom.ts', import.meta.url), 'utf8');
  return ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } })
    .outputText;
}

const ready = prepareE2e();
if (!ready.ok) console.warn(skipBanner('DOM update test', ready.reason));

describe.skipIf(!ready.ok)('update (keeping equal DOM nodes)', () => {
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    if (!ready.ok) return;
    browser = await chromium.launch({
      executablePath: ready.chromium.path,
      headless: true,
      args: chromiumArgs({ webgpu: false }),
    });
    page = await browser.newPage();
    // an inline module script: the module's own exports, published for the tests' evaluate calls
    await page.addScriptTag({ type: 'module', content: `${domModuleJs()}\nwindow.dom = { h, svg, fill, update };` });
    await page.waitForFunction(() => 'dom' in window);
  });

  afterAll(async () => {
    // unset when beforeAll failed
    await (browser as Browser | undefined)?.close();
  });

  it('gives the DOM that replacing gives, over random trees, and keeps every node a render left unchanged', async () => {
    const result = await page.evaluate(() => {
      type Dom = typeof import('../client/ui/dom.ts');
      const { h, svg, fill, update } = (window as unknown as { dom: Dom }).dom;
      // a seeded generator: the same trees on every run
      let seed = 12345;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return Math.floor((seed / 2147483648) * n);
      };
      const TAGS = ['div', 'p', 'span', 'strong', 'li', 'td'] as const;
      type Spec = { tag: string; cls: string; title: string | null; kids: (Spec | string)[] } | string;
      const spec = (depth: number): Spec => {
        if (depth === 0 || rand(4) === 0) return ['a', 'b', '1 ms', '', '…'][rand(5)];
        const kids: (Spec | string)[] = [];
        for (let i = rand(4); i > 0; i--) kids.push(spec(depth - 1));
        return {
          tag: TAGS[rand(TAGS.length)],
          cls: ['x', 'y', ''][rand(3)],
          title: rand(3) ? null : `t${rand(2)}`,
          kids,
        };
      };
      // a variant of a tree: some texts, classes, titles and children changed, some children dropped or added
      const mutate = (s: Spec): Spec => {
        if (typeof s === 'string') return rand(4) === 0 ? `${s}!` : s;
        if (rand(10) === 0) return spec(2);
        const kids = s.kids.filter(() => rand(6) !== 0).map(mutate);
        if (rand(5) === 0) kids.splice(rand(kids.length + 1), 0, spec(2));
        return { ...s, cls: rand(6) ? s.cls : 'z', title: rand(6) ? s.title : null, kids };
      };
      const build = (s: Spec): Node | string =>
        typeof s === 'string'
          ? s
          : h(`${s.tag}${s.cls ? `.${s.cls}` : ''}` as 'div', { title: s.title }, ...s.kids.map(build));
      const all = (root: Node): Node[] => {
        const out: Node[] = [];
        const walk = (n: Node) => {
          out.push(n);
          n.childNodes.forEach(walk);
        };
        root.childNodes.forEach(walk);
        return out;
      };
      let mismatches = 0;
      let touchedUnchanged = 0;
      let kept = 0;
      let total = 0;
      for (let trial = 0; trial < 300; trial++) {
        const before = [spec(4), spec(4), spec(3)];
        const after = trial % 3 === 0 ? before : before.map(mutate);
        const reference = h('div');
        fill(reference, ...after.map(build));
        const host = h('div');
        fill(host, ...before.map(build));
        const oldNodes = new Set(all(host));
        update(host, ...after.map(build));
        // isEqualNode: the same nodes, texts and attributes (an attribute added later serializes last)
        if (!host.isEqualNode(reference)) mismatches++;
        const now = all(host);
        total += now.length;
        kept += now.filter((n) => oldNodes.has(n)).length;
        // the same content again: no mutation at all
        const seen: MutationRecord[] = [];
        const observer = new MutationObserver((records) => seen.push(...records));
        observer.observe(host, { subtree: true, childList: true, attributes: true, characterData: true });
        update(host, ...after.map(build));
        seen.push(...observer.takeRecords());
        observer.disconnect();
        if (seen.length) touchedUnchanged++;
      }
      // an svg child keeps its namespace when patched
      const icon = h('div');
      update(icon, svg('svg', { viewBox: '0 0 1 1' }, svg('circle', { r: 1 })));
      const circle = icon.querySelector('circle');
      update(icon, svg('svg', { viewBox: '0 0 2 2' }, svg('circle', { r: 2 })));
      const svgKept =
        icon.querySelector('circle') === circle &&
        circle?.namespaceURI === 'http://www.w3.org/2000/svg' &&
        icon.innerHTML === '<svg viewBox="0 0 2 2"><circle r="2"></circle></svg>';
      return { mismatches, touchedUnchanged, kept, total, svgKept };
    });
    expect(result.mismatches).toBe(0);
    expect(result.touchedUnchanged).toBe(0);
    expect(result.svgKept).toBe(true);
    // most nodes of a lightly changed tree are the old ones
    expect(result.kept / result.total).toBeGreaterThan(0.5);
  });

  it('keeps an unchanged row and only the changed text node changes', async () => {
    const result = await page.evaluate(() => {
      type Dom = typeof import('../client/ui/dom.ts');
      const { h, update } = (window as unknown as { dom: Dom }).dom;
      const table = (cells: string[]) =>
        h('table', {}, ...cells.map((c, i) => h('tr', {}, h('th', {}, `stage ${i}`), h('td.ms', {}, c))));
      const host = h('div');
      update(host, table(['1.0', '2.0', '3.0']));
      const rows = [...host.querySelectorAll('tr')];
      const seen: MutationRecord[] = [];
      const observer = new MutationObserver((records) => seen.push(...records));
      observer.observe(host, { subtree: true, childList: true, attributes: true, characterData: true });
      update(host, table(['1.0', '2.5', '3.0']));
      seen.push(...observer.takeRecords());
      observer.disconnect();
      return {
        sameRows: [...host.querySelectorAll('tr')].every((r, i) => r === rows[i]),
        mutations: seen.map((m) => `${m.type}:${m.target.textContent}`),
      };
    });
    expect(result.sameRows).toBe(true);
    expect(result.mutations).toEqual(['characterData:2.5']);
  });

  it('never keeps an old element that has a listener, pixels or a value in place of a new one', async () => {
    const result = await page.evaluate(() => {
      type Dom = typeof import('../client/ui/dom.ts');
      const { h, update } = (window as unknown as { dom: Dom }).dom;
      const clicks: string[] = [];
      const host = h('div');
      const view = (n: string) =>
        [
          h('button', { type: 'button', onclick: () => clicks.push(n) }, 'Dismiss'),
          h('canvas', { width: 4, height: 4 }),
          h('input', { value: n }),
        ] as const;
      update(host, ...view('first'));
      const [button, canvas, input] = view('second');
      canvas.getContext('2d')!.fillRect(0, 0, 4, 4);
      update(host, button, canvas, input);
      host.querySelector('button')!.click();
      return {
        clicks,
        sameCanvas: host.querySelector('canvas') === canvas,
        sameInput: host.querySelector('input') === input,
      };
    });
    expect(result.clicks).toEqual(['second']);
    expect(result.sameCanvas).toBe(true);
    expect(result.sameInput).toBe(true);
  });

  it('drops an old listener for a new element without one, and keeps the parent of a replaced button', async () => {
    const result = await page.evaluate(() => {
      type Dom = typeof import('../client/ui/dom.ts');
      const { h, update } = (window as unknown as { dom: Dom }).dom;
      const clicks: string[] = [];
      const host = h('div');
      update(host, h('button', { type: 'button', onclick: () => clicks.push('old') }, 'Go'));
      update(host, h('button', { type: 'button' }, 'Go'));
      host.querySelector('button')!.click();
      // a banner: its box stays, its close button (a listener) is the new one
      const banner = (i: number) =>
        h('div.banner', {}, h('span', {}, 'peer-left'), h('button', { onclick: () => clicks.push(`close ${i}`) }, '×'));
      update(host, banner(1));
      const box = host.firstChild;
      update(host, banner(2));
      host.querySelector('button')!.click();
      return { clicks, sameBox: host.firstChild === box };
    });
    expect(result.clicks).toEqual(['close 2']);
    expect(result.sameBox).toBe(true);
  });

  it('inserts a fragment as its children, and keeps an HTML and an SVG element of one name apart', async () => {
    const result = await page.evaluate(() => {
      type Dom = typeof import('../client/ui/dom.ts');
      const { h, svg, fill, update } = (window as unknown as { dom: Dom }).dom;
      const fragment = () => {
        const f = document.createDocumentFragment();
        f.append(h('p', {}, 'one'), h('p', {}, 'two'));
        return f;
      };
      const host = h('div');
      update(host, h('p', {}, 'zero'), fragment(), 'tail');
      const reference = h('div');
      fill(reference, h('p', {}, 'zero'), fragment(), 'tail');
      const fragmentOk = host.isEqualNode(reference) && host.childNodes.length === 4;
      const links = h('div');
      update(links, h('a', { href: '#x' }, 'x'));
      const htmlA = links.firstChild;
      update(links, svg('a', { href: '#x' }, 'x'));
      const svgA = links.firstChild as Element;
      return { fragmentOk, replaced: svgA !== htmlA, ns: svgA.namespaceURI };
    });
    expect(result.fragmentOk).toBe(true);
    expect(result.replaced).toBe(true);
    expect(result.ns).toBe('http://www.w3.org/2000/svg');
  });
});
