import * as z from "zod/mini";
import { queryAuditLog, type StoredAuditEvent } from "../db/audit";
import { base64url, base64urlDecode } from "../lib/crypto";
import { deadLetterRegistry, outboxHolder } from "../objects/locate";
import type { RegisteredObject } from "../objects/dead-letter-registry";
import type { Env } from "../env";
import { invalidRequest } from "../oauth/errors";
import { instant, param, parseInstant, parseWith } from "../oauth/schema";
import type { AdminHandler } from "./support/admin-auth";
import { readQuery } from "./support/params";
import { jsonResponse } from "./support/respond";

/**
 * The audit log over the admin API: the events in D1, filtered and paged (GET /admin/audit), and the events that are
 * not in D1 yet because delivering them failed — dead letters — across objects, found through the registry of
 * objects holding any (GET /admin/audit/dead-letters) and put back in line (POST /admin/audit/dead-letters/redrive).
 * Neither dead-letter endpoint needs D1, so both work while D1 is down.
 */

const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;
const MAX_OBJECTS = 500;

const pageSize = (max: number) =>
  z.string().check(
    z.regex(/^[1-9][0-9]{0,3}$/, `must be a whole number between 1 and ${max}`),
    z.refine((n) => Number(n) <= max, `must be a whole number between 1 and ${max}`),
  );

const AuditQuery = z.object({
  type: z.optional(z.string().check(z.regex(/^[a-z0-9_.]{1,100}\*?$/, "must be an event type such as admin.user.created, or a prefix ending in * (admin.user.*)"))),
  user: z.optional(param(256)),
  client: z.optional(param(256)),
  since: z.optional(instant),
  until: z.optional(instant),
  limit: z.optional(pageSize(MAX_PAGE)),
  cursor: z.optional(param(400)),
});

function encodeCursor(event: StoredAuditEvent): string {
  return base64url(new TextEncoder().encode(JSON.stringify([event.occurred_at, event.event_id])));
}

function decodeCursor(cursor: string): { occurredAt: number; eventId: string } {
  try {
    const [occurredAt, eventId] = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(base64urlDecode(cursor))) as unknown[];
    if (Number.isSafeInteger(occurredAt) && typeof eventId === "string" && eventId.length <= 200) return { occurredAt: occurredAt as number, eventId };
  } catch {
    // fall through
  }
  throw invalidRequest("cursor: is not a cursor this API gave");
}

/**
 * GET /admin/audit?type=&user=&client=&since=&until=&limit=&cursor= → {events, next_cursor}: newest first, each event
 * with its fields as stored (times in ms). `type` may end in `*` for a prefix; `since` is inclusive, `until` exclusive.
 */
export const queryAuditRoute: AdminHandler = async (request, env) => {
  const query = parseWith(AuditQuery, readQuery(request, ["type", "user", "client", "since", "until", "limit", "cursor"]));
  const limit = Number(query.limit ?? DEFAULT_PAGE);
  const page = await queryAuditLog(env.DB, {
    type: query.type,
    subject: query.user,
    clientId: query.client,
    since: query.since === undefined ? undefined : parseInstant(query.since)!,
    until: query.until === undefined ? undefined : parseInstant(query.until)!,
    before: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
    limit: limit + 1,
  });
  const events = page.slice(0, limit);
  return jsonResponse({ events, next_cursor: page.length > limit ? encodeCursor(events.at(-1)!) : null });
};

const DeadLetterQuery = z.object({ limit: z.optional(pageSize(MAX_OBJECTS)), events: z.optional(pageSize(1000)) });

/** How an object is named in answers: the name it is addressed by (`family:<id>`), else its id. */
function objectLabel(entry: RegisteredObject): string {
  return entry.name ?? entry.id;
}

/**
 * GET /admin/audit/dead-letters?limit=&events= → the objects holding audit events not in D1 (from the registry), each
 * with its live counts and its dead letters (up to `events` each), and the totals.
 */
export const listDeadLettersRoute: AdminHandler = async (request, env) => {
  const query = parseWith(DeadLetterQuery, readQuery(request, ["limit", "events"]));
  const registered = await deadLetterRegistry(env).list(Number(query.limit ?? 100));
  const perObject = Number(query.events ?? 100);
  const objects = await Promise.all(
    registered.objects.map(async (entry) => {
      const holder = outboxHolder(env, entry);
      if (holder === null) return { source: entry.source, object: objectLabel(entry), error: "not an object of this OP" };
      const [status, letters] = await Promise.all([holder.outboxStatus(), holder.deadLetters(perObject)]);
      return {
        source: entry.source,
        object: objectLabel(entry),
        pending: status.pending,
        dead_lettered: status.deadLettered,
        oldest_pending_at: status.oldestPendingAt,
        dead_letters: letters.map((l) => ({ ...l.event, attempts: l.attempts, last_error: l.lastError, dead_lettered_at: l.deadLetteredAt })),
      };
    }),
  );
  const totals = objects.reduce(
    (t, o) => ({ pending: t.pending + (o.pending ?? 0), dead_lettered: t.dead_lettered + (o.dead_lettered ?? 0) }),
    { pending: 0, dead_lettered: 0 },
  );
  // `more`: the registry lists objects beyond `limit`; `totals.objects` counts them all.
  return jsonResponse({ objects, more: registered.total > registered.objects.length, totals: { objects: registered.total, ...totals } });
};

/**
 * POST /admin/audit/dead-letters/redrive → {redriven, objects, more}: every dead letter of the objects the registry
 * lists as holding some is put back in line (attempts reset) and delivered by its object's alarm — once, as delivery
 * is idempotent by event id. A second call finds none left to redrive. Up to `limit` objects per call.
 */
export const redriveDeadLettersRoute: AdminHandler = async (request, env) => {
  const query = parseWith(z.object({ limit: z.optional(pageSize(MAX_OBJECTS)) }), readQuery(request, ["limit"]));
  const registered = await deadLetterRegistry(env).list(Number(query.limit ?? 100), true);
  const counts = await Promise.all(registered.objects.map((entry) => redriveOne(env, entry)));
  const redriven = counts.reduce((a, b) => a + b, 0);
  return jsonResponse({ redriven, objects: counts.filter((n) => n > 0).length, more: registered.total > registered.objects.length });
};

async function redriveOne(env: Env, entry: RegisteredObject): Promise<number> {
  const holder = outboxHolder(env, entry);
  return holder === null ? 0 : await holder.redriveDeadLetters();
}
