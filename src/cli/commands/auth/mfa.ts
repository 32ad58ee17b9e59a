import { UserError } from '../../../core/index.ts';
import type { MfaEnableAnswer, MfaStatusAnswer } from '../../api-types.ts';
import { defineCommand, jsonFlag, type Context } from '../../command.ts';
import { formatTime } from '../../output.ts';
import { canPrompt, promptCode } from './one-time-code.ts';

const ACTIONS = ['enable', 'confirm', 'disable', 'status'] as const;

export default defineCommand({
  name: 'mfa',
  summary: 'Set up, confirm, check or switch off multi-factor authentication (TOTP)',
  description: [
    'enable   starts enrolment: prints an otpauth:// URI and its secret for your authenticator app',
    '         (1Password, Google Authenticator, FreeOTP, …). Shown only this once.',
    'confirm  CODE: activates it with a code from the app, and prints 10 recovery codes, once.',
    '         From then on, `ward auth login` needs a code (--otp).',
    'disable  switches it off; needs a current code or a recovery code (--otp CODE, or CODE).',
    'status   shows whether MFA is on and how many recovery codes are left.',
  ].join('\n'),
  args: [
    { name: 'ACTION', required: true, description: `One of ${ACTIONS.join(', ')}` },
    { name: 'CODE', description: 'The one-time code (confirm, disable)' },
  ],
  flags: {
    otp: { type: 'string', placeholder: 'CODE', description: 'A current one-time code or a recovery code (disable)' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: ['ward auth mfa enable', 'ward auth mfa confirm 123456', 'ward auth mfa disable --otp 123456', 'ward auth mfa status --json'],
  check({ args, flags }) {
    if (!(ACTIONS as readonly string[]).includes(args.ACTION)) {
      throw new UserError('usage', `unknown action "${args.ACTION}"; use one of ${ACTIONS.join(', ')}`, { hint: 'see ward auth mfa --help' });
    }
    if (args.ACTION === 'confirm' && !args.CODE) throw new UserError('usage', 'confirm needs the CODE your authenticator app shows', { hint: 'ward auth mfa confirm 123456' });
    if (args.CODE && flags.otp && args.CODE !== flags.otp) throw new UserError('usage', 'two codes given; pass one');
    if ((args.ACTION === 'enable' || args.ACTION === 'status') && (args.CODE || flags.otp)) {
      throw new UserError('usage', `${args.ACTION} takes no code`, { hint: 'see ward auth mfa --help' });
    }
  },
  async run(ctx, { args, flags }) {
    const code = args.CODE ?? flags.otp;
    switch (args.ACTION) {
      case 'enable':
        return enable(ctx);
      case 'confirm':
        return confirm(ctx, code!);
      case 'disable':
        return disable(ctx, code);
      default:
        return status(ctx);
    }
  },
});

async function enable(ctx: Context): Promise<void> {
  const a = await ctx.api.post<MfaEnableAnswer>('/v1/auth/mfa/enable');
  ctx.out.result({ factor_id: a.factor_id, type: a.type, secret: a.secret, otpauth_uri: a.otpauth_uri }, () => {
    ctx.out.info('Add this account to your authenticator app: open the URI (or make a QR code of it), or type the secret.');
    ctx.out.fields([
      ['URI', a.otpauth_uri],
      ['Secret', a.secret],
    ]);
    ctx.out.info('They are shown only now. Then confirm with the code the app shows: ward auth mfa confirm CODE');
  });
  // A terminal gets the URI as a QR code too, for phone authenticator apps; a pipe or --json does not.
  if (!ctx.out.json && ctx.io.stdout.isTTY) ctx.io.stdout.write(await terminalQr(a.otpauth_uri));
}

async function confirm(ctx: Context, code: string): Promise<void> {
  const r = await ctx.api.post<{ recovery_codes: string[] }>('/v1/auth/mfa/confirm', { code });
  ctx.out.result({ enabled: true, recovery_codes: r.recovery_codes }, () => {
    ctx.out.info('MFA is on. From now on, logging in needs a code: ward auth login --otp CODE');
    ctx.out.info('Recovery codes — each works once instead of a code; store them somewhere safe, they are shown only now:');
    for (const c of r.recovery_codes) ctx.out.line(c);
  });
}

async function disable(ctx: Context, given: string | undefined): Promise<void> {
  let code = given;
  if (!code) {
    const st = await ctx.api.get<MfaStatusAnswer>('/v1/auth/mfa');
    if (st.enabled) {
      if (!canPrompt(ctx, false)) {
        throw new UserError('usage', 'switching MFA off needs a current one-time code or a recovery code', { hint: 'ward auth mfa disable --otp CODE' });
      }
      code = await promptCode(ctx);
    }
  }
  await ctx.api.post('/v1/auth/mfa/disable', code ? { otp: code } : {});
  ctx.out.result({ enabled: false }, () => ctx.out.info('MFA is off; logging in needs only your password. Recovery codes no longer work.'));
}

async function status(ctx: Context): Promise<void> {
  const st = await ctx.api.get<MfaStatusAnswer>('/v1/auth/mfa');
  ctx.out.result(st, () => {
    const totp = st.factors.find((f) => f.type === 'totp');
    ctx.out.fields([
      ['MFA', st.enabled ? 'on' : st.pending ? 'waiting for ward auth mfa confirm CODE' : 'off'],
      ['Since', totp?.confirmed_at ? formatTime(totp.confirmed_at) : undefined],
      ['Last used', totp?.last_used_at ? formatTime(totp.last_used_at) : undefined],
      ['Recovery codes left', st.enabled ? String(st.recovery_codes_left) : undefined],
    ]);
  });
}

/** terminalQr renders text as a QR code of Unicode half blocks, two modules per character cell. */
export async function terminalQr(text: string): Promise<string> {
  // Loaded here, not at start: every `ward` command would pay for it.
  const { default: QRCode } = await import('qrcode');
  return QRCode.toString(text, { type: 'terminal', small: true, errorCorrectionLevel: 'M' });
}
