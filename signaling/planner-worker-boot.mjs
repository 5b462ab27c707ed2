// Entry of the planner worker thread: plain JavaScript, so Node can start it under any runner; it
// registers tsx's loader and then loads the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./planner-worker.ts');
