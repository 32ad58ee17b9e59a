import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.ts';
import { ctxOf, principalOf } from '../auth.ts';
import { errorResponses, orgParam } from '../schemas.ts';
import type { OrgNetworkRecord, WireGuardPeerRecord } from '../../store/index.ts';


const network = {
  type: 'object',
  required: ['org', 'prefix', 'egress'],
  properties: { org: { type: 'string' }, prefix: { type: 'string' }, egress: { type: 'string', enum: ['allow', 'deny'] }, updated_at: { type: 'string' } },
} as const;

const peer = {
  type: 'object',
  required: ['id', 'name', 'public_key', 'address', 'created_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    public_key: { type: 'string' },
    address: { type: 'string' },
    created_by: { type: ['string', 'null'] },
    created_at: { type: 'string' },
  },
} as const;

function networkView(orgName: string, n: OrgNetworkRecord) {
  return { org: orgName, prefix: n.prefix, egress: n.egress, ...(n.updatedAt ? { updated_at: n.updatedAt } : {}) };
}

function peerView(p: WireGuardPeerRecord) {
  return { id: p.id, name: p.name, public_key: p.publicKey, address: p.address, created_by: p.createdBy, created_at: p.createdAt };
}

/** networkRoutes: an org's network settings (egress) and people's WireGuard peers (docs/networking.md). */
export const networkRoutes = (s: Services) => async (app: FastifyInstance) => {
  app.get<{ Params: { org: string } }>('/v1/orgs/:org/network', {
    config: { auth: 'org:read' },
    schema: {
      summary: 'The org\'s private network: its prefix and egress policy',
      tags: ['network'],
      params: orgParam,
      response: { 200: { type: 'object', required: ['network'], properties: { network } }, ...errorResponses(401, 404) },
    },
  }, async (req) => {
    const r = await s.network.show(principalOf(req), req.params.org, ctxOf(req));
    return { network: networkView(r.org.name, r.network) };
  });

  app.put<{ Params: { org: string }; Body: { egress?: string; prefix?: string } }>('/v1/orgs/:org/network', {
    config: { auth: 'org:manage' },
    schema: {
      summary: 'Set the org\'s egress (allow, the default, or deny connections from its instances to the outside) and/or its prefix',
      description: 'prefix is a ULA /48 of your choosing; it changes only while no instance and no WireGuard peer of the org holds an address.',
      tags: ['network'],
      params: orgParam,
      body: {
        type: 'object',
        minProperties: 1,
        additionalProperties: false,
        properties: { egress: { type: 'string', enum: ['allow', 'deny'] }, prefix: { type: 'string', maxLength: 64 } },
      },
      response: { 200: { type: 'object', required: ['network'], properties: { network } }, ...errorResponses(400, 401, 403, 404, 409) },
    },
  }, async (req) => {
    const r = await s.network.update(principalOf(req), req.params.org, { egress: req.body.egress, prefix: req.body.prefix }, ctxOf(req));
    req.log.info({ org_id: r.org.id, egress: r.network.egress, prefix: r.network.prefix }, 'org network updated');
    return { network: networkView(r.org.name, r.network) };
  });

  app.get<{ Params: { org: string } }>('/v1/orgs/:org/wireguard', {
    config: { auth: 'org:read' },
    schema: {
      summary: 'The org\'s WireGuard peers (people)',
      tags: ['network'],
      params: orgParam,
      response: { 200: { type: 'object', required: ['peers'], properties: { peers: { type: 'array', items: peer } } }, ...errorResponses(401, 404) },
    },
  }, async (req) => ({ peers: (await s.network.listPeers(principalOf(req), req.params.org, ctxOf(req))).peers.map(peerView) }));

  app.post<{ Params: { org: string }; Body: { name: string; public_key: string } }>('/v1/orgs/:org/wireguard', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Add a WireGuard peer for a person: send its public key, get what its wg-quick file needs',
      description: 'The private key never reaches the server: the client makes the key pair and keeps the private key.',
      tags: ['network'],
      params: orgParam,
      body: {
        type: 'object',
        required: ['name', 'public_key'],
        additionalProperties: false,
        properties: { name: { type: 'string', maxLength: 63 }, public_key: { type: 'string', maxLength: 64 } },
      },
      response: {
        201: {
          type: 'object',
          required: ['peer', 'tunnel'],
          properties: {
            peer,
            tunnel: {
              type: 'object',
              required: ['org', 'address', 'dns', 'allowed_ips', 'gateway_public_key', 'gateway_endpoint'],
              properties: {
                org: { type: 'string' },
                address: { type: 'string' },
                dns: { type: 'string' },
                allowed_ips: { type: 'array', items: { type: 'string' } },
                gateway_public_key: { type: 'string' },
                gateway_endpoint: { type: 'string' },
              },
            },
          },
        },
        ...errorResponses(400, 401, 403, 404, 409, 503),
      },
    },
  }, async (req, reply) => {
    const r = await s.network.createPeer(principalOf(req), req.params.org, { name: req.body.name, publicKey: req.body.public_key }, ctxOf(req));
    req.log.info({ org_id: r.org.id, peer_id: r.peer.id, address: r.peer.address }, 'wireguard peer created');
    const t = r.tunnel;
    return reply.status(201).send({
      peer: peerView(r.peer),
      tunnel: { org: r.org.name, address: t.address, dns: t.dns, allowed_ips: t.allowedIPs, gateway_public_key: t.gatewayPublicKey, gateway_endpoint: t.gatewayEndpoint },
    });
  });

  app.delete<{ Params: { org: string; name: string } }>('/v1/orgs/:org/wireguard/:name', {
    config: { auth: 'app:deploy' },
    schema: {
      summary: 'Remove a WireGuard peer',
      tags: ['network'],
      params: { type: 'object', required: ['org', 'name'], properties: { org: { type: 'string', maxLength: 63 }, name: { type: 'string', maxLength: 63 } } },
      response: { 200: { type: 'object', required: ['peer'], properties: { peer } }, ...errorResponses(401, 403, 404) },
    },
  }, async (req) => {
    const r = await s.network.removePeer(principalOf(req), req.params.org, req.params.name, ctxOf(req));
    req.log.info({ org_id: r.org.id, peer_id: r.peer.id }, 'wireguard peer removed');
    return { peer: peerView(r.peer) };
  });
};
