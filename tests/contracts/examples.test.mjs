// Every example in contracts/openapi.json and contracts/asyncapi.json validates against its
// schema and names no field the schema does not list, so the examples cannot drift from the
// schemas (nor the schemas from the examples).
//
//   node --test tests/contracts/            (`npm ci` in tests/browser first)
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { HttpContract, WsContract } from './contracts.mjs';

const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// [where, schema, value] for every example of the OpenAPI document.
function openApiExamples(contract) {
  const { doc } = contract;
  const found = [];
  const media = (where, content) => {
    for (const [type, object] of Object.entries(content ?? {})) {
      if (!object.schema) continue;
      if ('example' in object) found.push([`${where} ${type} example`, object.schema, object.example]);
      for (const [name, example] of Object.entries(object.examples ?? {})) {
        const resolved = contract.deref(example);
        if ('value' in resolved) found.push([`${where} ${type} examples.${name}`, object.schema, resolved.value]);
      }
    }
  };
  const parameters = (where, list) => {
    for (const parameter of (list ?? []).map((p) => contract.deref(p))) {
      if (parameter.schema && 'example' in parameter) found.push([`${where} parameter ${parameter.name}`, parameter.schema, parameter.example]);
    }
  };
  for (const [template, item] of Object.entries(doc.paths)) {
    parameters(template, item.parameters);
    for (const method of methods) {
      const operation = item[method];
      if (!operation) continue;
      const where = `${method.toUpperCase()} ${template}`;
      parameters(where, operation.parameters);
      if (operation.requestBody) media(`${where} request`, contract.deref(operation.requestBody).content);
      for (const [status, response] of Object.entries(operation.responses)) {
        media(`${where} ${status}`, contract.deref(response).content);
      }
    }
  }
  for (const [name, response] of Object.entries(doc.components.responses ?? {})) media(`responses.${name}`, response.content);
  for (const [name, schema] of Object.entries(doc.components.schemas ?? {})) schemaExamples(`schemas.${name}`, schema, found);
  return found;
}

// Schema-level `examples` arrays, at any depth of a schema.
function schemaExamples(where, schema, found) {
  if (!schema || typeof schema !== 'object') return;
  if (Array.isArray(schema.examples)) schema.examples.forEach((value, index) => found.push([`${where} examples[${index}]`, schema, value]));
  for (const [key, sub] of Object.entries(schema.properties ?? {})) schemaExamples(`${where}.${key}`, sub, found);
  for (const key of ['allOf', 'anyOf', 'oneOf']) (schema[key] ?? []).forEach((sub, index) => schemaExamples(`${where}.${key}[${index}]`, sub, found));
  if (schema.items) schemaExamples(`${where}.items`, schema.items, found);
}

function asyncApiExamples(contract) {
  const { doc } = contract;
  const found = [];
  for (const [name, message] of Object.entries(doc.components.messages ?? {})) {
    const payload = message.payload;
    (message.examples ?? []).forEach((example, index) => {
      if ('payload' in example) found.push([`messages.${name} examples[${index}]`, payload, example.payload]);
    });
  }
  for (const [name, schema] of Object.entries(doc.components.schemas ?? {})) schemaExamples(`schemas.${name}`, schema, found);
  return found;
}

function checkAll(contract, examples) {
  const problems = [];
  for (const [where, schema, value] of examples) {
    for (const problem of contract.schemas.check(schema, value)) problems.push(`${where}: ${problem}`);
  }
  return problems;
}

test('every OpenAPI example matches its schema', () => {
  const contract = new HttpContract();
  const examples = openApiExamples(contract);
  assert.ok(examples.length > 20, `only ${examples.length} examples found`);
  const problems = checkAll(contract, examples);
  assert.deepEqual(problems, [], problems.join('\n'));
});

test('every OpenAPI request body and success answer has an example', () => {
  const contract = new HttpContract();
  const missing = [];
  for (const { method, template, operation } of contract.operations()) {
    const where = `${method.toUpperCase()} ${template}`;
    if (operation.requestBody) {
      for (const [type, object] of Object.entries(contract.deref(operation.requestBody).content)) {
        if (!object.example && !object.examples) missing.push(`${where} request ${type}`);
      }
    }
    for (const [status, response] of Object.entries(operation.responses)) {
      if (!/^2/.test(status)) continue;
      for (const [type, object] of Object.entries(contract.deref(response).content ?? {})) {
        if (!object.example && !object.examples) missing.push(`${where} ${status} ${type}`);
      }
    }
  }
  assert.deepEqual(missing, []);
});

test('every AsyncAPI example matches its message', () => {
  const contract = new WsContract();
  const examples = asyncApiExamples(contract);
  assert.ok(examples.length > 15, `only ${examples.length} examples found`);
  const problems = checkAll(contract, examples);
  assert.deepEqual(problems, [], problems.join('\n'));
});

test('every AsyncAPI message has a payload schema in components.schemas, an example, and one operation', () => {
  const contract = new WsContract();
  const { doc } = contract;
  const problems = [];
  const inOperations = new Map();
  for (const [name, operation] of Object.entries(doc.operations)) {
    for (const ref of operation.messages ?? []) inOperations.set(ref.$ref.split('/').pop(), `${name} (${operation.action})`);
  }
  for (const [name, message] of Object.entries(doc.components.messages)) {
    const schemaName = message.payload?.$ref?.split('/').pop();
    if (!schemaName || !doc.components.schemas[schemaName]) problems.push(`${name}: payload is not a components.schemas reference`);
    if (!(message.examples?.length > 0)) problems.push(`${name}: no example`);
    if (!inOperations.has(name)) problems.push(`${name}: in no operation`);
    const expected = name.startsWith('Client') ? 'receive' : 'send';
    if (inOperations.has(name) && !inOperations.get(name).includes(`(${expected})`)) problems.push(`${name}: not in the ${expected} operation`);
  }
  for (const [type, { name }] of [...contract.client, ...contract.server]) {
    if (!doc.components.messages[name]) problems.push(`schema ${name} (type ${type}) has no message`);
  }
  assert.deepEqual(problems, []);
  assert.ok(contract.client.size >= 7 && contract.server.size >= 9, 'client and server messages found by their type');
});
