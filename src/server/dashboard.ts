/**
 * Serves the web dashboard (static files in src/dashboard, no build step) at /ui, its
 * /ui/config.json, and in dev mode the fault switch the dev cluster's control server flips to
 * partition a node (POST /v1/dev/isolate).
 *
 * The static files hold no data and are served without the bearer token (the page asks for one
 * when the API wants it). The page talks to every member directly (CORS, see cors.ts), so it
 * keeps working when the node that served it is gone.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { allowedOrigins, originOf } from './cors.ts';
import { ApiError } from './errors.ts';
import { memberClientUrls } from './http.ts';
import type { NodeMetrics } from './metrics.ts';
import type { UnderstudyNode } from './node.ts';

export interface IsolationSwitch {
  readonly isolated: boolean;
  setIsolated(isolated: boolean): void;
}

export interface DashboardOptions {
  readonly node: UnderstudyNode;
  readonly transport: IsolationSwitch;
  readonly metrics?: NodeMetrics;
  readonly authRequired: boolean;
}

const FILES = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'styles.css': 'text/css; charset=utf-8',
} as const;

type DashboardFile = keyof typeof FILES;

const DIR = new URL('../dashboard/', import.meta.url);
const cache = new Map<DashboardFile, string>();

function file(name: DashboardFile): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(name, DIR), 'utf8');
    cache.set(name, text);
  }
  return text;
}

function noQuery(request: FastifyRequest): void {
  const key = Object.keys((request.query ?? {}) as Record<string, unknown>)[0];
  if (key !== undefined) throw new ApiError('UNKNOWN_PARAMETER', `unknown query parameter '${key}' (allowed: none)`);
}

export function registerDashboard(app: FastifyInstance, options: DashboardOptions): void {
  const { node } = options;
  const devControlUrl = node.config.devControlUrl ?? null;

  /** Only the members and the dev control server may be fetched by the page. */
  const contentSecurityPolicy = (): string => {
    const origins = [...allowedOrigins(memberClientUrls(node))];
    const control = devControlUrl === null ? null : originOf(devControlUrl);
    if (control !== null) origins.push(control);
    // IPv6 literals cannot be written in a CSP source list; 'self' still covers the serving node.
    const connect = [...new Set(origins)].filter((origin) => !origin.includes('['));
    return [
      "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
      `connect-src 'self' ${connect.join(' ')}`, "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ].join('; ');
  };

  const serve = (name: DashboardFile) => async (_request: FastifyRequest, reply: import('fastify').FastifyReply) => {
    reply.type(FILES[name]);
    reply.header('cache-control', 'no-cache');
    reply.header('x-content-type-options', 'nosniff');
    if (name === 'index.html') {
      reply.header('content-security-policy', contentSecurityPolicy());
      reply.header('referrer-policy', 'no-referrer');
    }
    return file(name);
  };
  app.get('/ui', serve('index.html'));
  app.get('/ui/', serve('index.html'));
  for (const name of Object.keys(FILES) as DashboardFile[]) app.get(`/ui/${name}`, serve(name));

  // What the page needs before it can ask the API anything: whom to poll, whether a token is
  // needed, and whether dev actions (kill, restart, partition) are available.
  app.get('/ui/config.json', async (request, reply) => {
    noQuery(request);
    reply.header('cache-control', 'no-store');
    const members = new Map<string, string>();
    for (const member of node.config.members) members.set(member.id, member.client);
    if (node.isStarted) {
      for (const [id, address] of Object.entries(node.core.membership.addresses ?? {})) members.set(id, address.client);
    }
    return {
      node: node.id,
      authRequired: options.authRequired,
      members: [...members].map(([id, client]) => ({ id, client })).sort((a, b) => a.id.localeCompare(b.id)),
      devControl: devControlUrl,
      pollIntervalMs: 1000,
    };
  });

  if (!node.config.devMode) return;

  app.get('/v1/dev/isolate', async (request) => {
    noQuery(request);
    return { node: node.id, isolated: options.transport.isolated };
  });

  app.post('/v1/dev/isolate', async (request) => {
    noQuery(request);
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).some((key) => key !== 'isolated')
      || typeof (body as { isolated?: unknown }).isolated !== 'boolean') {
      throw new ApiError('BAD_REQUEST', 'body must be {"isolated": true|false}');
    }
    const isolated = (body as { isolated: boolean }).isolated;
    if (isolated !== options.transport.isolated) {
      options.transport.setIsolated(isolated);
      options.metrics?.events.add({ type: 'isolation', isolated });
    }
    return { node: node.id, isolated };
  });
}
