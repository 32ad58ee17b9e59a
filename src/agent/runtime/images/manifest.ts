import { UserError } from '../../../core/index.ts';
import { checkDigest, shortDigest } from './digest.ts';

/**
 * Manifests, indexes and image configs (OCI image-spec v1, and Docker's schema 2 which it grew from):
 * parsed from untrusted JSON into small checked shapes, so the rest of the code handles one form.
 */

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** MANIFEST_ACCEPT is the Accept header for manifest requests: every form Ward reads. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerList, MEDIA_TYPES.dockerManifest,
].join(', ');

const LAYER_TYPES = new Set<string>([
  MEDIA_TYPES.ociLayer, MEDIA_TYPES.ociLayerGzip, MEDIA_TYPES.ociLayerZstd, MEDIA_TYPES.dockerLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar', // written by some docker-archive converters
]);
const NONDISTRIBUTABLE = /^application\/vnd\.(oci\.image\.layer\.nondistributable\.v1\.tar|docker\.image\.rootfs\.foreign\.diff\.tar)/;

/** MAX_MANIFEST_SIZE caps manifests and indexes (registries cap them at 4 MiB too). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;
/** MAX_CONFIG_SIZE caps image configs: real ones are kilobytes; history can make them larger. */
export const MAX_CONFIG_SIZE = 8 * 1024 * 1024;

/** Descriptor points at a blob by digest and size. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

/** Platform is what an index entry runs on. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** ImageIndex lists manifests per platform (OCI index or Docker manifest list). */
export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

/** ImageManifest names one image's config and layers, bottom layer first. */
export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

/**
 * ImageConfig is the part of the OCI image config that says how to run the image, with the OCI field
 * names. Missing lists and maps are empty; missing strings are absent.
 */
export interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts: string[];
  StopSignal?: string;
  Labels: Record<string, string>;
}

/** ParsedConfig is a whole image config: platform, run config and the layers' DiffIDs. */
export interface ParsedConfig {
  os: string;
  architecture: string;
  variant?: string;
  config: ImageConfig;
  diffIds: string[];
}

function invalid(what: string, why: string, hint = 'the image is malformed; rebuild or re-push it'): UserError {
  return new UserError('image_invalid', `${what}: ${why}`, { hint });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** parseJson reads a JSON object from untrusted bytes. */
export function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw invalid(what, `not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(v)) throw invalid(what, 'not a JSON object');
  return v;
}

function stringMap(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw invalid(what, 'must be an object of strings');
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw invalid(what, `${k} must be a string`);
    out[k] = x;
  }
  return out;
}

function parseDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) throw invalid(what, 'a descriptor must be an object');
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string') throw invalid(what, 'a descriptor has no mediaType');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(what, 'a descriptor has no valid size');
  const d: Descriptor = { mediaType, digest: checkDigest(digest, what), size };
  const annotations = stringMap(v.annotations, `${what} annotations`);
  if (annotations) d.annotations = annotations;
  if (v.platform !== undefined) {
    const p = v.platform;
    if (!isObject(p) || typeof p.os !== 'string' || typeof p.architecture !== 'string') throw invalid(what, 'a platform needs os and architecture');
    d.platform = { os: p.os, architecture: p.architecture };
    if (typeof p.variant === 'string') d.platform.variant = p.variant;
  }
  return d;
}

/**
 * parseManifestOrIndex reads a manifest or an index. The media type comes from the document, else from
 * the transport (a registry's Content-Type), else from its shape.
 */
export function parseManifestOrIndex(bytes: Buffer, what: string, transportType?: string): ImageIndex | ImageManifest {
  const doc = parseJson(bytes, what);
  if (doc.schemaVersion === 1 || transportType?.startsWith(MEDIA_TYPES.dockerSchema1)) {
    throw invalid(what, 'Docker schema 1 manifests are not supported', 'push the image again with a current tool (it writes schema 2 or OCI)');
  }
  if (doc.schemaVersion !== 2) throw invalid(what, 'schemaVersion must be 2');
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  const type = declared ?? (transportType && transportType !== 'application/json' ? transportType.split(';')[0]!.trim() : undefined);
  const isIndex = type === MEDIA_TYPES.ociIndex || type === MEDIA_TYPES.dockerList || (type === undefined && Array.isArray(doc.manifests));
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) throw invalid(what, 'an index needs a manifests list');
    return { kind: 'index', mediaType: type ?? MEDIA_TYPES.ociIndex, manifests: doc.manifests.map((m, i) => parseDescriptor(m, `${what} manifests[${i}]`)) };
  }
  const isManifest = type === MEDIA_TYPES.ociManifest || type === MEDIA_TYPES.dockerManifest || (type === undefined && isObject(doc.config));
  if (!isManifest) throw invalid(what, `unsupported media type ${JSON.stringify(type)}`, 'Ward runs OCI and Docker schema 2 images');
  if (!Array.isArray(doc.layers)) throw invalid(what, 'a manifest needs a layers list');
  const config = parseDescriptor(doc.config, `${what} config`);
  if (config.mediaType !== MEDIA_TYPES.ociConfig && config.mediaType !== MEDIA_TYPES.dockerConfig) {
    throw invalid(what, `the config has media type ${JSON.stringify(config.mediaType)}: this is not a container image`, 'Ward runs container images, not other OCI artifacts');
  }
  const layers = doc.layers.map((l, i) => {
    const d = parseDescriptor(l, `${what} layers[${i}]`);
    if (NONDISTRIBUTABLE.test(d.mediaType)) {
      throw invalid(what, `layer ${i} is non-distributable (${d.mediaType}): Ward does not fetch layers from foreign URLs`);
    }
    if (!LAYER_TYPES.has(d.mediaType)) throw invalid(what, `layer ${i} has unsupported media type ${JSON.stringify(d.mediaType)}`);
    return d;
  });
  return { kind: 'manifest', mediaType: type ?? MEDIA_TYPES.ociManifest, config, layers };
}

/** hostPlatform is the platform Ward runs images for on this machine (Go's names for Node's). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

/** formatPlatform writes `linux/amd64` or `linux/arm/v7`. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * selectPlatform picks the index entry for the platform: os and architecture must match; among several
 * the one with the wanted variant (or none) wins. No match is UserError `image_invalid` naming what the
 * index offers.
 */
export function selectPlatform(index: ImageIndex, want: Platform, what: string): Descriptor {
  const images = index.manifests.filter((m) => m.mediaType === MEDIA_TYPES.ociManifest || m.mediaType === MEDIA_TYPES.dockerManifest || m.mediaType === MEDIA_TYPES.ociIndex || m.mediaType === MEDIA_TYPES.dockerList);
  const matches = images.filter((m) => m.platform?.os === want.os && m.platform.architecture === want.architecture);
  const best = matches.find((m) => (m.platform?.variant ?? '') === (want.variant ?? '')) ?? matches[0];
  if (best) return best;
  const offered = images.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown platform'));
  throw new UserError('image_invalid', `${what} has no image for ${formatPlatform(want)}${offered.length ? ` (it has ${[...new Set(offered)].join(', ')})` : ''}`, {
    hint: `build and push the image for ${formatPlatform(want)}`,
    details: { platform: formatPlatform(want), offered },
  });
}

function stringList(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw invalid(what, 'must be a list of strings');
  return v as string[];
}

function optString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw invalid(what, 'must be a string');
  return v;
}

/** parseConfig reads an image config (OCI, or Docker's which has the same fields) and checks its DiffIDs. */
export function parseConfig(bytes: Buffer, digest: string): ParsedConfig {
  const what = `image config ${shortDigest(digest)}`;
  const doc = parseJson(bytes, what);
  if (typeof doc.os !== 'string' || typeof doc.architecture !== 'string') throw invalid(what, 'os and architecture are required');
  const rootfs = doc.rootfs;
  if (!isObject(rootfs) || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) throw invalid(what, 'rootfs.diff_ids is missing');
  const diffIds = rootfs.diff_ids.map((d, i) => checkDigest(d, `${what} rootfs.diff_ids[${i}]`));
  const c = doc.config === undefined || doc.config === null ? {} : doc.config;
  if (!isObject(c)) throw invalid(what, 'config must be an object');
  const ports = c.ExposedPorts;
  if (ports !== undefined && ports !== null && !isObject(ports)) throw invalid(`${what} ExposedPorts`, 'must be an object');
  const config: ImageConfig = {
    Env: stringList(c.Env, `${what} Env`) ?? [],
    ExposedPorts: isObject(ports) ? Object.keys(ports) : [],
    Labels: stringMap(c.Labels, `${what} Labels`) ?? {},
  };
  const entrypoint = stringList(c.Entrypoint, `${what} Entrypoint`);
  if (entrypoint) config.Entrypoint = entrypoint;
  const cmd = stringList(c.Cmd, `${what} Cmd`);
  if (cmd) config.Cmd = cmd;
  const workingDir = optString(c.WorkingDir, `${what} WorkingDir`);
  if (workingDir) config.WorkingDir = workingDir;
  const user = optString(c.User, `${what} User`);
  if (user) config.User = user;
  const stopSignal = optString(c.StopSignal, `${what} StopSignal`);
  if (stopSignal) config.StopSignal = stopSignal;
  const out: ParsedConfig = { os: doc.os, architecture: doc.architecture, config, diffIds };
  if (typeof doc.variant === 'string' && doc.variant) out.variant = doc.variant;
  return out;
}

/**
 * checkConfigMatches checks the config against its manifest and the wanted platform: one DiffID per
 * layer, and the os/architecture the host runs (a single-platform image for another CPU is refused here,
 * as an index without this platform is refused by selectPlatform).
 */
export function checkConfigMatches(config: ParsedConfig, manifest: ImageManifest, want: Platform, what: string): void {
  if (config.diffIds.length !== manifest.layers.length) {
    throw invalid(what, `the manifest has ${manifest.layers.length} layers but the config lists ${config.diffIds.length} DiffIDs`);
  }
  if (config.os !== want.os || config.architecture !== want.architecture) {
    const have = formatPlatform(config);
    throw new UserError('image_invalid', `${what} is for ${have}, not ${formatPlatform(want)}`, {
      hint: `build and push the image for ${formatPlatform(want)}`,
      details: { platform: formatPlatform(want), offered: [have] },
    });
  }
}
