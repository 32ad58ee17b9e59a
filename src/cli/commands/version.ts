import { VERSION } from '../../core/index.ts';
import { defineCommand, jsonFlag } from '../command.ts';

export default defineCommand({
  name: 'version',
  summary: "Print Ward's version",
  flags: { json: jsonFlag },
  async run(ctx) {
    const info = { version: VERSION, node: process.version, platform: process.platform, arch: process.arch };
    ctx.out.result(info, () => ctx.out.line(`ward ${info.version} (node ${info.node}, ${info.platform}/${info.arch})`));
  },
});
