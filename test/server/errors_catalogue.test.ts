// Goal: docs/api.md documents exactly the error codes of ERROR_CATALOGUE (src/server/errors.ts),
// with the same status, outcome class and retryability: every catalogue code is documented, and
// every documented code exists (in the style of Fastify's test/internals/errors.test.js).
// Method: read docs/api.md, take the rows of its error catalogue table
// (| `CODE` | status | outcome | retryable | meaning |) and compare them with the catalogue.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CATALOGUE, type ErrorCode } from '../../src/server/errors.ts';

const apiMd = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
const ROW = /^\| `([A-Z][A-Z0-9_]*)` \| (\d{3}) \| (rejected|indeterminate) \| (yes|no) \| (.+) \|$/gm;

interface DocumentedError { readonly code: string; readonly status: number; readonly outcome: string; readonly retryable: boolean; readonly meaning: string }

const documented: DocumentedError[] = [...apiMd.matchAll(ROW)].map((match) => ({
  code: match[1] ?? '', status: Number(match[2]), outcome: match[3] ?? '', retryable: match[4] === 'yes', meaning: match[5] ?? '',
}));
const catalogue = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

describe('error catalogue documentation', () => {
  it('docs/api.md has an error catalogue table', () => {
    assert.match(apiMd, /^## Error catalogue$/m);
    assert.ok(documented.length > 0, 'no rows like | `CODE` | 400 | rejected | no | meaning | found');
  });

  it('every code in ERROR_CATALOGUE is documented in docs/api.md', () => {
    const codes = new Set(documented.map((row) => row.code));
    const missing = catalogue.filter((code) => !codes.has(code));
    assert.deepEqual(missing, [], `undocumented error codes: ${missing.join(', ')}`);
  });

  it('every code documented in docs/api.md exists in ERROR_CATALOGUE', () => {
    const unknown = documented.map((row) => row.code).filter((code) => !Object.hasOwn(ERROR_CATALOGUE, code));
    assert.deepEqual(unknown, [], `documented codes that do not exist: ${unknown.join(', ')}`);
  });

  it('each code is documented once', () => {
    const seen = new Set<string>();
    const repeated = documented.map((row) => row.code).filter((code) => (seen.has(code) ? true : (seen.add(code), false)));
    assert.deepEqual(repeated, []);
  });

  it('each documented status, outcome and retryability matches the catalogue', () => {
    for (const row of documented) {
      const spec = ERROR_CATALOGUE[row.code as ErrorCode];
      if (spec === undefined) continue; // reported by the test above
      assert.deepEqual(
        { status: row.status, outcome: row.outcome, retryable: row.retryable },
        { status: spec.status, outcome: spec.outcome, retryable: spec.retryable },
        `docs/api.md row for ${row.code}`,
      );
      assert.ok(row.meaning.trim().length > 0, `${row.code} has no meaning`);
    }
  });

  it('the catalogue itself is well formed: UPPER_SNAKE codes, 4xx/5xx statuses, indeterminate only on 5xx', () => {
    for (const code of catalogue) {
      const spec = ERROR_CATALOGUE[code];
      assert.match(code, /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/);
      assert.ok(spec.status >= 400 && spec.status < 600, code);
      if (spec.outcome === 'indeterminate') assert.ok(spec.status >= 500, `${code}: a 4xx is never indeterminate`);
      assert.ok(spec.description.length > 0, code);
    }
  });
});
