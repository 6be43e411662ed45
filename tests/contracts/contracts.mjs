// The protocol's machine-readable contracts (contracts/openapi.json, contracts/asyncapi.json)
// as validators: JSON Schema by Ajv (2020-12 for OpenAPI 3.1, draft-07 for AsyncAPI 3.0's
// default schema format), the HTTP routes as path templates, the WebSocket messages by `type`,
// and the drift check that a value carries no field its schema does not list.
//
// Shared by traffic.test.mjs, examples.test.mjs and lint.mjs. The npm packages live in
// tests/browser/node_modules (`npm ci` there first).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const source = process.env.FLASHSALE_SOURCE_DIR ?? path.resolve(here, '../..');
export const contractsDir = path.join(source, 'contracts');
export const npmDir = path.join(source, 'tests/browser');
export const require = createRequire(path.join(npmDir, 'package.json'));

const Ajv2020 = require('ajv/dist/2020').default;
const Ajv07 = require('ajv').default;
const addFormats = require('ajv-formats').default;

export function readContract(name) {
  return JSON.parse(readFileSync(path.join(contractsDir, name), 'utf8'));
}

const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// Follows a local JSON pointer ("#/a/b") in `root`.
export function pointer(root, ref) {
  if (!ref.startsWith('#')) throw new Error(`only local references are supported: ${ref}`);
  let node = root;
  for (const raw of ref.slice(1).split('/').filter(Boolean)) {
    const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    if (node == null || !(key in node)) throw new Error(`unresolved reference ${ref}`);
    node = node[key];
  }
  return node;
}

// An OpenAPI object that may be a Reference Object (responses, parameters, request bodies).
function deref(root, node) {
  let seen = 0;
  while (node && typeof node.$ref === 'string') {
    if (++seen > 16) throw new Error(`reference loop at ${node.$ref}`);
    node = pointer(root, node.$ref);
  }
  return node;
}

// A copy of `schema` whose references into `from` ("#/components/schemas/") point at `to`.
function retarget(schema, from, to) {
  if (Array.isArray(schema)) return schema.map((item) => retarget(item, from, to));
  if (schema === null || typeof schema !== 'object') return schema;
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    out[key] = key === '$ref' && typeof value === 'string' && value.startsWith(from)
      ? to + value.slice(from.length)
      : retarget(value, from, to);
  }
  return out;
}

// Validators for the schemas of one document. `root` resolves the document's own references;
// `compile(schema)` takes a schema as it is written in the document (cached by identity).
class SchemaSet {
  constructor(ajv, root, id, defsKey) {
    this.ajv = ajv;
    this.root = root;
    this.id = id;
    this.cache = new Map();
    const defs = retarget(root.components?.schemas ?? {}, '#/components/schemas/', `${id}#/${defsKey}/`);
    ajv.addSchema({ $id: id, [defsKey]: defs });
    this.defsKey = defsKey;
  }

  compile(schema) {
    let validate = this.cache.get(schema);
    if (!validate) {
      validate = this.ajv.compile(retarget(schema, '#/components/schemas/', `${this.id}#/${this.defsKey}/`));
      this.cache.set(schema, validate);
    }
    return validate;
  }

  // Problems of `value` against `schema`: Ajv's errors, then fields the schema does not list.
  check(schema, value, { drift = true } = {}) {
    const validate = this.compile(schema);
    const problems = validate(value) ? [] : summarize(validate.errors);
    if (drift) {
      for (const field of undocumented(this.root, schema, value)) problems.push(`${field} is not in the schema (undocumented field)`);
    }
    return problems;
  }
}

// Ajv's errors as lines: the missing properties of one object on one line, and without the
// "must match then schema" that repeats the errors under it.
function summarize(errors) {
  const lines = [];
  const missing = new Map();
  for (const error of errors) {
    const at = error.instancePath || '(root)';
    if (error.keyword === 'if') continue;
    if (error.keyword === 'required') {
      if (!missing.has(at)) {
        missing.set(at, []);
        lines.push(() => `${at} must have required properties: ${missing.get(at).join(', ')}`);
      }
      missing.get(at).push(error.params.missingProperty);
      continue;
    }
    lines.push(`${at} ${error.message}${describeParams(error)}`);
  }
  return [...new Set(lines.map((line) => (typeof line === 'function' ? line() : line)))];
}

function describeParams(error) {
  const { params } = error;
  if (params?.allowedValues) return `: ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  if (params?.allowedValue !== undefined) return `: ${JSON.stringify(params.allowedValue)}`;
  return '';
}

// The properties a schema names, over $ref, allOf/anyOf/oneOf and if/then/else; `open` when
// no branch names any (an object of free form: not checked).
function shape(root, schema, out = { properties: new Map(), items: [], named: false }, depth = 0) {
  if (!schema || typeof schema !== 'object' || depth > 32) return out;
  if (typeof schema.$ref === 'string') shape(root, pointer(root, schema.$ref), out, depth + 1);
  if (schema.properties) {
    out.named = true;
    for (const [name, sub] of Object.entries(schema.properties)) {
      if (!out.properties.has(name)) out.properties.set(name, []);
      out.properties.get(name).push(sub);
    }
  }
  if (schema.items && typeof schema.items === 'object' && !Array.isArray(schema.items)) out.items.push(schema.items);
  for (const key of ['allOf', 'anyOf', 'oneOf']) for (const sub of schema[key] ?? []) shape(root, sub, out, depth + 1);
  for (const key of ['if', 'then', 'else']) if (schema[key]) shape(root, schema[key], out, depth + 1);
  return out;
}

// The paths ("$.error.code") of the fields in `value`, at any depth, that `schema` does not name.
export function undocumented(root, schema, value, at = '$') {
  const found = [];
  if (value === null || typeof value !== 'object') return found;
  const known = shape(root, schema);
  if (Array.isArray(value)) {
    if (known.items.length === 0) return found;
    value.forEach((item, index) => found.push(...undocumented(root, { allOf: known.items }, item, `${at}[${index}]`)));
    return found;
  }
  if (!known.named) return found;
  for (const [key, inner] of Object.entries(value)) {
    const subs = known.properties.get(key);
    if (!subs) found.push(`${at}.${key}`);
    else found.push(...undocumented(root, { allOf: subs }, inner, `${at}.${key}`));
  }
  return found;
}

// The OpenAPI document: routes, responses and their schemas.
export class HttpContract {
  constructor(doc = readContract('openapi.json')) {
    this.doc = doc;
    const ajv = new Ajv2020({ strictSchema: true, strictNumbers: true, strictTypes: false, strictTuples: false, strictRequired: false, allowUnionTypes: true, allErrors: true });
    addFormats(ajv);
    this.schemas = new SchemaSet(ajv, doc, 'https://flashsale.invalid/contracts/openapi.json', '$defs');
    this.routes = Object.entries(doc.paths).map(([template, item]) => ({
      template,
      pattern: new RegExp(`^${template.split(/\{[^}/]+\}/).map(escapeRegExp).join('[^/]*')}$`),
      item,
    }));
    this.errorSchema = doc.components.schemas.Error;
  }

  // The documented operation for `method` (upper case) and a path without query; null if none.
  operation(method, pathname) {
    const route = this.routes.find((candidate) => candidate.pattern.test(pathname));
    if (!route) return null;
    const lower = method.toLowerCase();
    const operation = route.item[lower];
    if (!operation) return { template: route.template, operation: null };
    return { template: route.template, operation, method: lower };
  }

  // The response object for `status` (or `default`), dereferenced; null if not documented.
  response(operation, status) {
    const found = operation.responses[String(status)] ?? operation.responses.default;
    return found ? deref(this.doc, found) : null;
  }

  // Every (method, path template) the document has.
  *operations() {
    for (const route of this.routes) {
      for (const method of methods) if (route.item[method]) yield { method, template: route.template, operation: route.item[method], item: route.item };
    }
  }

  deref(node) {
    return deref(this.doc, node);
  }
}

// The AsyncAPI document: the client and server messages by `type`.
export class WsContract {
  constructor(doc = readContract('asyncapi.json')) {
    this.doc = doc;
    const ajv = new Ajv07({ strictSchema: true, strictNumbers: true, strictTypes: false, strictTuples: false, strictRequired: false, allowUnionTypes: true, allErrors: true });
    addFormats(ajv);
    this.schemas = new SchemaSet(ajv, doc, 'https://flashsale.invalid/contracts/asyncapi.json', 'definitions');
    this.client = new Map();
    this.server = new Map();
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      const type = schema.properties?.type?.const;
      if (typeof type !== 'string') continue;
      if (name.startsWith('Client')) this.client.set(type, { name, schema });
      else if (name.startsWith('Server')) this.server.set(type, { name, schema });
    }
  }
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
