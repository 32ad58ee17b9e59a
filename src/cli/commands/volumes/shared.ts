import type { Context } from '../../command.ts';
import { formatTime } from '../../output.ts';

/** ApiVolume is a volume as the API returns it (src/api/routes/volumes.ts). */
export interface ApiVolume {
  id: string;
  name: string;
  app: string;
  region: string;
  host: string;
  size_bytes: number;
  size: string;
  encryption: 'luks2' | 'fscrypt' | null;
  encryption_description: string;
  formatted_at: string | null;
  attached: string[];
  created_at: string;
}

/** printVolume shows one volume, its encryption first among the details. */
export function printVolume(ctx: Context, v: ApiVolume): void {
  ctx.out.fields([
    ['name', v.name],
    ['id', v.id],
    ['app', v.app],
    ['size', v.size],
    ['region', v.region],
    ['host', v.host],
    ['encryption', v.encryption ? `${v.encryption}: ${v.encryption_description}` : v.encryption_description],
    ['key', 'its own random 256-bit key, sealed under the app\'s data key (wrapped by the master key); opened only for its host'],
    ['formatted', v.formatted_at ? formatTime(v.formatted_at) : undefined],
    ['attached', v.attached.length ? v.attached.join(', ') : 'no instance'],
    ['created', formatTime(v.created_at)],
  ]);
}
