/**
 * Entry point of the page: builds the App (controller) and the view, exposes `window.tandem`, and
 * starts profiling + joining according to the URL (?join, ?host, ?name, ?emulate, ?backend).
 */
import './styles.css';
import { App } from './app/app.ts';
import type { TandemSnapshot } from './app/app-state.ts';
import { observeLongTasks, type LongTask } from './app/long-tasks.ts';
import { mountPage } from './ui/page.ts';

declare global {
  interface Window {
    tandem: {
      version: 1;
      snapshot(): TandemSnapshot;
      longTasks(): LongTask[];
      now(): number;
      /** the plan whose stage this page has built (before its start can run at once), null before any */
      preparedPlan(): string | null;
      /** fault injection (?hold=): the count the stage holds at now, and releasing it */
      holds: { holding(): number | null; arm(counts: number[]): void; release(generated: number): void };
    };
  }
}

const longTasks = observeLongTasks();
const app = new App();
const root = document.getElementById('app');
if (!root) throw new Error('index.html lacks <div id="app">');
mountPage(root, app);
Object.defineProperty(window, 'tandem', {
  value: Object.freeze({
    version: 1 as const,
    snapshot: () => app.snapshot(),
    longTasks,
    now: () => performance.now(),
    preparedPlan: () => app.preparedPlan(),
    holds: Object.freeze({
      holding: () => app.holds.holding(),
      arm: (counts: number[]) => app.holds.arm(counts),
      release: (generated: number) => app.holds.release(generated),
    }),
  }),
  writable: false,
  configurable: false,
});
app.start(location.search);
