import { UserError } from '../../../core/index.ts';

/**
 * Image references as users write them (shared/CLI.md): a registry reference like
 * `registry.example.com/team/app:1.2` or `…@sha256:<hex>`, or a local image with a transport prefix as
 * skopeo and podman write them: `oci-archive:PATH[:REF]`, `docker-archive:PATH[:REF]`, `oci:DIR[:REF]`.
 * The registry grammar is Docker's (distribution/reference): a first component with a `.` or `:`, or
 * `localhost`, is the registry host; otherwise the image is on Docker Hub (`docker.io`, `library/` for
 * one-component names).
 */

/** RegistryReference names an image in a registry. */
export interface RegistryReference {
  transport: 'registry';
  /** registry is the host as written, with its port: `registry.example.com`, `localhost:5000`, `[::1]:5000`. */
  registry: string;
  /** repository is the path in the registry: `team/app`, `library/alpine`. */
  repository: string;
  /** tag is set unless the reference has only a digest; `latest` when neither was given. */
  tag: string | undefined;
  /** digest pins the manifest (or index): it wins over the tag. */
  digest: string | undefined;
}

/** ArchiveReference names a local image: a tar archive or an OCI layout directory. */
export interface ArchiveReference {
  transport: 'oci-archive' | 'docker-archive' | 'oci';
  path: string;
  /**
   * selector picks one image when the archive has several: for OCI, the `org.opencontainers.image.ref.name`
   * annotation (a tag like `1.2`); for docker-archive, a `name:tag` from RepoTags or `@N` (the Nth image).
   */
  selector: string | undefined;
}

export type ImageReference = RegistryReference | ArchiveReference;

const DOCKER_HUB = 'docker.io';
const LOCAL_TRANSPORTS = ['oci-archive', 'docker-archive', 'oci'] as const;
/** Other skopeo transports: named so the error can say they are not supported rather than misparse them. */
const OTHER_TRANSPORTS = ['containers-storage', 'dir', 'docker-daemon', 'ostree', 'sif', 'tarball'];

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]{1,5})?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const MAX_NAME = 255;

const FORMS = 'use registry.example.com/team/app:1.2, registry.example.com/team/app@sha256:<64 hex>, oci-archive:PATH, docker-archive:PATH or oci:DIR[:TAG]';

function bad(input: string, why: string, hint = FORMS): UserError {
  return new UserError('invalid_image_ref', `invalid image reference ${JSON.stringify(input)}: ${why}`, { hint });
}

/** parseReference reads an image reference, or throws UserError `invalid_image_ref` with the accepted forms. */
export function parseReference(input: string): ImageReference {
  const s = input.trim();
  if (s === '') throw bad(input, 'it is empty');
  if (/\s/.test(s)) throw bad(input, 'it contains white space');
  for (const t of LOCAL_TRANSPORTS) {
    if (s.startsWith(`${t}:`)) return parseLocal(input, t, s.slice(t.length + 1));
  }
  if (s.startsWith('docker://')) return parseRegistry(input, s.slice('docker://'.length));
  const colon = s.indexOf(':');
  if (colon > 0 && OTHER_TRANSPORTS.includes(s.slice(0, colon))) {
    throw bad(input, `the ${s.slice(0, colon)}: transport is not supported`, 'export the image with `skopeo copy` to oci-archive:, docker-archive: or a registry');
  }
  return parseRegistry(input, s);
}

function parseLocal(input: string, transport: ArchiveReference['transport'], rest: string): ArchiveReference {
  // As skopeo: the path ends at the first colon; what follows selects an image inside.
  const colon = rest.indexOf(':');
  const path = colon === -1 ? rest : rest.slice(0, colon);
  const selector = colon === -1 ? undefined : rest.slice(colon + 1);
  if (path === '') throw bad(input, `${transport}: needs a path`, `like ${transport}:./app.tar`);
  if (selector !== undefined) {
    if (selector === '') throw bad(input, 'the image name after the path is empty');
    if (transport === 'docker-archive') {
      if (!/^@\d+$/.test(selector)) parseRegistry(input, selector); // validates name:tag
    } else if (!TAG_RE.test(selector) && !/^[\w][\w.:/@-]{0,255}$/.test(selector)) {
      throw bad(input, `${JSON.stringify(selector)} is not a valid image name in an OCI layout`);
    }
  }
  return { transport, path, selector };
}

function parseRegistry(input: string, s: string): RegistryReference {
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) {
      throw bad(input, `${JSON.stringify(digest)} is not a sha256 digest`, 'a digest is sha256: and 64 lowercase hex digits');
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const tagColon = rest.indexOf(':', lastSlash + 1);
  if (tagColon !== -1) {
    tag = rest.slice(tagColon + 1);
    rest = rest.slice(0, tagColon);
    if (!TAG_RE.test(tag)) throw bad(input, `${JSON.stringify(tag)} is not a valid tag`, 'a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`');
  }
  if (rest === '') throw bad(input, 'the image name is missing');
  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN_RE.test(registry)) throw bad(input, `${JSON.stringify(registry)} is not a valid registry host`);
  const port = /:(\d+)$/.exec(registry)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw bad(input, `port ${port} is out of range`);
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT_RE.test(component)) {
      const why = component !== component.toLowerCase() ? 'repository names must be lowercase' : `${JSON.stringify(component)} is not a valid name component`;
      throw bad(input, why, 'name components are lowercase letters and digits, separated by `.`, `_`, `__` or `-`');
    }
  }
  if (registry.length + 1 + repository.length > MAX_NAME) throw bad(input, `the name is longer than ${MAX_NAME} characters`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { transport: 'registry', registry, repository, tag, digest };
}

/** formatReference writes a reference back in its canonical form (Docker Hub names in full). */
export function formatReference(ref: ImageReference): string {
  if (ref.transport !== 'registry') return `${ref.transport}:${ref.path}${ref.selector === undefined ? '' : `:${ref.selector}`}`;
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}
