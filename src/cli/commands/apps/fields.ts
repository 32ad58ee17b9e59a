import type { ApiApp } from '../../api-types.ts';
import type { Output } from '../../output.ts';
import { formatTime } from '../../output.ts';

/** printApp shows one app as fields; create, show and destroy share it. */
export function printApp(out: Output, app: ApiApp): void {
  out.fields([
    ['Name', app.name],
    ['ID', app.id],
    ['Org', app.org.name],
    ['Created', formatTime(app.created_at)],
    ['Updated', formatTime(app.updated_at)],
  ]);
}
