// The Postman script sandbox: `pm`, the legacy globals (`tests`, `responseBody`,
// `postman.setEnvironmentVariable`, …), `console`, `require` for the libraries
// collections use most (lodash, uuid, crypto-js, chai) and `xml2Json`.
//
// The host calls `__execute(input)`, then `__deliver(responses)` while scripts
// wait on `pm.sendRequest`, then `__finish()`; all three exchange JSON text.
// Host functions (Rust): `__host_resolve(template, layers)`, `__host_digest(alg, hex, keyHex)`,
// `__host_uuid()`, `__host_xml2json(text)`.
(function (global) {
  "use strict";
  const chai = global.__chai;
  const inspect = chai.inspect;

  // ----- bytes, text and encodings (for crypto-js, btoa/atob)
  function utf8ToHex(text) {
    const bytes = unescape(encodeURIComponent(String(text)));
    let hex = "";
    for (let i = 0; i < bytes.length; i++) hex += ("0" + bytes.charCodeAt(i).toString(16)).slice(-2);
    return hex;
  }
  function hexToLatin1(hex) {
    let out = "";
    for (let i = 0; i + 1 < hex.length; i += 2) out += String.fromCharCode(parseInt(hex.substr(i, 2), 16));
    return out;
  }
  function latin1ToHex(text) {
    let hex = "";
    for (let i = 0; i < text.length; i++) hex += ("0" + (text.charCodeAt(i) & 0xff).toString(16)).slice(-2);
    return hex;
  }
  function hexToUtf8(hex) {
    return decodeURIComponent(escape(hexToLatin1(hex)));
  }
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  function btoa(latin1) {
    let out = "";
    for (let i = 0; i < latin1.length; i += 3) {
      const a = latin1.charCodeAt(i);
      const b = latin1.charCodeAt(i + 1);
      const c = latin1.charCodeAt(i + 2);
      out += B64[a >> 2] + B64[((a & 3) << 4) | (isNaN(b) ? 0 : b >> 4)];
      out += isNaN(b) ? "=" : B64[((b & 15) << 2) | (isNaN(c) ? 0 : c >> 6)];
      out += isNaN(c) ? "=" : B64[c & 63];
    }
    return out;
  }
  function atob(b64) {
    const clean = String(b64).replace(/[^A-Za-z0-9+/]/g, "");
    let out = "";
    for (let i = 0; i < clean.length; i += 4) {
      const n = [0, 1, 2, 3].map((j) => (i + j < clean.length ? B64.indexOf(clean[i + j]) : -1));
      out += String.fromCharCode((n[0] << 2) | (n[1] >> 4));
      if (n[2] >= 0) out += String.fromCharCode(((n[1] & 15) << 4) | (n[2] >> 2));
      if (n[3] >= 0) out += String.fromCharCode(((n[2] & 3) << 6) | n[3]);
    }
    return out;
  }

  // ----- crypto-js: WordArrays carry hex; hashing happens in the host.
  function WordArray(hex) {
    this.hex = hex;
    this.sigBytes = hex.length / 2;
  }
  const enc = {
    Hex: { stringify: (wa) => wa.hex, parse: (s) => new WordArray(String(s).toLowerCase()) },
    Utf8: { stringify: (wa) => hexToUtf8(wa.hex), parse: (s) => new WordArray(utf8ToHex(s)) },
    Latin1: { stringify: (wa) => hexToLatin1(wa.hex), parse: (s) => new WordArray(latin1ToHex(s)) },
    Base64: { stringify: (wa) => btoa(hexToLatin1(wa.hex)), parse: (s) => new WordArray(latin1ToHex(atob(s))) },
  };
  WordArray.prototype.toString = function (encoder) {
    return (encoder || enc.Hex).stringify(this);
  };
  WordArray.prototype.concat = function (other) {
    this.hex += other.hex;
    this.sigBytes = this.hex.length / 2;
    return this;
  };
  function toHex(data) {
    return data instanceof WordArray ? data.hex : utf8ToHex(data === undefined ? "" : data);
  }
  const CryptoJS = { enc, lib: { WordArray: { create: (hex) => new WordArray(hex || "") } } };
  [["MD5", "md5"], ["SHA1", "sha1"], ["SHA224", "sha224"], ["SHA256", "sha256"], ["SHA384", "sha384"],
    ["SHA512", "sha512"]].forEach(([name, alg]) => {
    CryptoJS[name] = (data) => new WordArray(__host_digest(alg, toHex(data), ""));
    CryptoJS["Hmac" + name] = (data, key) => new WordArray(__host_digest(alg, toHex(data), toHex(key)));
  });

  // ----- lodash-style helpers
  const _ = (function () {
    const isArray = Array.isArray;
    const isObject = (v) => v !== null && (typeof v === "object" || typeof v === "function");
    const isPlainObject = (v) => v !== null && typeof v === "object" && !isArray(v);
    const toPath = (p) => (isArray(p) ? p : String(p).replace(/\[(\w+)\]/g, ".$1").split(".").filter((s) => s !== ""));
    const iteratee = (f) => {
      if (typeof f === "function") return f;
      if (typeof f === "string") return (o) => (o == null ? undefined : get(o, f));
      if (isArray(f)) return (o) => chai.deepEqual(get(o, f[0]), f[1]);
      if (isPlainObject(f)) return (o) => Object.keys(f).every((k) => chai.deepEqual(o && o[k], f[k]));
      return (v) => v;
    };
    const values = (o) => (o == null ? [] : isArray(o) ? o.slice() : typeof o === "string" ? o.split("") : Object.keys(o).map((k) => o[k]));
    function get(obj, path, fallback) {
      let cursor = obj;
      for (const part of toPath(path)) {
        if (cursor === null || cursor === undefined) return fallback;
        cursor = cursor[part];
      }
      return cursor === undefined ? fallback : cursor;
    }
    function has(obj, path) {
      let cursor = obj;
      for (const part of toPath(path)) {
        if (cursor === null || cursor === undefined || !Object.prototype.hasOwnProperty.call(Object(cursor), part)) return false;
        cursor = cursor[part];
      }
      return true;
    }
    function set(obj, path, value) {
      const parts = toPath(path);
      let cursor = obj;
      parts.forEach((part, i) => {
        if (i === parts.length - 1) cursor[part] = value;
        else {
          if (!isObject(cursor[part])) cursor[part] = /^\d+$/.test(parts[i + 1]) ? [] : {};
          cursor = cursor[part];
        }
      });
      return obj;
    }
    function cloneDeep(v) {
      if (isArray(v)) return v.map(cloneDeep);
      if (isPlainObject(v)) {
        const out = {};
        Object.keys(v).forEach((k) => (out[k] = cloneDeep(v[k])));
        return out;
      }
      return v;
    }
    function merge(target) {
      for (let i = 1; i < arguments.length; i++) {
        const source = arguments[i];
        if (!isObject(source)) continue;
        Object.keys(source).forEach((k) => {
          if (isPlainObject(source[k]) && isPlainObject(target[k])) merge(target[k], source[k]);
          else target[k] = cloneDeep(source[k]);
        });
      }
      return target;
    }
    const lib = {
      get, has, set, cloneDeep, merge, values, iteratee,
      clone: (v) => (isArray(v) ? v.slice() : isPlainObject(v) ? Object.assign({}, v) : v),
      keys: (o) => (o == null ? [] : Object.keys(o)),
      isEqual: chai.deepEqual,
      isEmpty: (v) => v == null || (typeof v === "string" || isArray(v) ? v.length === 0 : typeof v === "object" ? Object.keys(v).length === 0 : true),
      isArray, isObject, isPlainObject,
      isString: (v) => typeof v === "string",
      isNumber: (v) => typeof v === "number",
      isInteger: Number.isInteger,
      isBoolean: (v) => typeof v === "boolean",
      isFunction: (v) => typeof v === "function",
      isNil: (v) => v == null,
      isNull: (v) => v === null,
      isUndefined: (v) => v === undefined,
      isNaN: (v) => typeof v === "number" && v !== v,
      isDate: (v) => v instanceof Date,
      isRegExp: (v) => v instanceof RegExp,
      size: (v) => (v == null ? 0 : typeof v === "string" || isArray(v) ? v.length : Object.keys(v).length),
      map: (c, f) => values(c).map((v, i) => iteratee(f)(v, isArray(c) ? i : Object.keys(c)[i], c)),
      filter: (c, f) => values(c).filter((v) => iteratee(f)(v)),
      reject: (c, f) => values(c).filter((v) => !iteratee(f)(v)),
      find: (c, f) => values(c).find((v) => iteratee(f)(v)),
      findIndex: (a, f) => (a || []).findIndex((v) => iteratee(f)(v)),
      some: (c, f) => values(c).some((v) => iteratee(f)(v)),
      every: (c, f) => values(c).every((v) => iteratee(f)(v)),
      includes: (c, v) => (typeof c === "string" ? c.indexOf(v) !== -1 : values(c).some((x) => x === v || (x !== x && v !== v))),
      reduce: (c, f, acc) => values(c).reduce(f, acc),
      forEach: (c, f) => {
        if (isArray(c)) c.forEach(f);
        else if (c) Object.keys(c).forEach((k) => f(c[k], k, c));
        return c;
      },
      first: (a) => (a ? a[0] : undefined),
      head: (a) => (a ? a[0] : undefined),
      last: (a) => (a && a.length ? a[a.length - 1] : undefined),
      tail: (a) => (a ? a.slice(1) : []),
      take: (a, n) => (a || []).slice(0, n === undefined ? 1 : n),
      range: (start, end, step) => {
        if (end === undefined) [start, end] = [0, start];
        step = step || (start < end ? 1 : -1);
        const out = [];
        for (let i = start; step > 0 ? i < end : i > end; i += step) out.push(i);
        return out;
      },
      times: (n, f) => Array.from({ length: n }, (x, i) => (f ? f(i) : i)),
      random: (lower, upper, floating) => {
        if (upper === undefined) [lower, upper] = [0, lower === undefined ? 1 : lower];
        const r = lower + Math.random() * (upper - lower);
        return floating || !Number.isInteger(lower) || !Number.isInteger(upper) ? r : Math.floor(lower + Math.random() * (upper - lower + 1));
      },
      sample: (c) => {
        const v = values(c);
        return v[Math.floor(Math.random() * v.length)];
      },
      shuffle: (c) => values(c).sort(() => Math.random() - 0.5),
      uniq: (a) => (a || []).filter((v, i, all) => all.indexOf(v) === i),
      uniqBy: (a, f) => {
        const seen = [];
        return (a || []).filter((v) => {
          const key = iteratee(f)(v);
          if (seen.indexOf(key) !== -1) return false;
          seen.push(key);
          return true;
        });
      },
      flatten: (a) => [].concat.apply([], a || []),
      flattenDeep: function flattenDeep(a) {
        return (a || []).reduce((acc, v) => acc.concat(isArray(v) ? flattenDeep(v) : v), []);
      },
      compact: (a) => (a || []).filter(Boolean),
      difference: (a, b) => (a || []).filter((v) => (b || []).indexOf(v) === -1),
      intersection: (a, b) => (a || []).filter((v) => (b || []).indexOf(v) !== -1),
      union: function () {
        return lib.uniq([].concat.apply([], Array.prototype.slice.call(arguments)));
      },
      zip: (a, b) => (a || []).map((v, i) => [v, (b || [])[i]]),
      chunk: (a, n) => {
        const out = [];
        for (let i = 0; i < (a || []).length; i += n || 1) out.push(a.slice(i, i + (n || 1)));
        return out;
      },
      pick: (o, ...paths) => {
        const out = {};
        [].concat.apply([], paths).forEach((p) => has(o, p) && set(out, p, get(o, p)));
        return out;
      },
      omit: (o, ...paths) => {
        const out = Object.assign({}, o);
        [].concat.apply([], paths).forEach((p) => delete out[p]);
        return out;
      },
      assign: Object.assign,
      extend: Object.assign,
      defaults: (o, ...sources) => {
        sources.forEach((s) => Object.keys(s || {}).forEach((k) => o[k] === undefined && (o[k] = s[k])));
        return o;
      },
      mapValues: (o, f) => {
        const out = {};
        Object.keys(o || {}).forEach((k) => (out[k] = iteratee(f)(o[k], k, o)));
        return out;
      },
      mapKeys: (o, f) => {
        const out = {};
        Object.keys(o || {}).forEach((k) => (out[iteratee(f)(o[k], k, o)] = o[k]));
        return out;
      },
      invert: (o) => {
        const out = {};
        Object.keys(o || {}).forEach((k) => (out[o[k]] = k));
        return out;
      },
      toPairs: (o) => Object.keys(o || {}).map((k) => [k, o[k]]),
      fromPairs: (pairs) => {
        const out = {};
        (pairs || []).forEach(([k, v]) => (out[k] = v));
        return out;
      },
      groupBy: (c, f) => {
        const out = {};
        values(c).forEach((v) => {
          const key = iteratee(f)(v);
          (out[key] = out[key] || []).push(v);
        });
        return out;
      },
      countBy: (c, f) => {
        const out = {};
        values(c).forEach((v) => {
          const key = iteratee(f)(v);
          out[key] = (out[key] || 0) + 1;
        });
        return out;
      },
      keyBy: (c, f) => {
        const out = {};
        values(c).forEach((v) => (out[iteratee(f)(v)] = v));
        return out;
      },
      sortBy: (c, f) => {
        const fs = (isArray(f) ? f : [f]).map(iteratee);
        return values(c).slice().sort((a, b) => {
          for (const g of fs) {
            const x = g(a);
            const y = g(b);
            if (x < y) return -1;
            if (x > y) return 1;
          }
          return 0;
        });
      },
      orderBy: (c, f, orders) => {
        const sorted = lib.sortBy(c, f);
        return orders && orders[0] === "desc" ? sorted.reverse() : sorted;
      },
      sum: (a) => (a || []).reduce((s, v) => s + v, 0),
      sumBy: (a, f) => (a || []).reduce((s, v) => s + iteratee(f)(v), 0),
      mean: (a) => (a && a.length ? lib.sum(a) / a.length : NaN),
      max: (a) => (a && a.length ? Math.max.apply(null, a) : undefined),
      min: (a) => (a && a.length ? Math.min.apply(null, a) : undefined),
      maxBy: (a, f) => lib.sortBy(a, f).pop(),
      minBy: (a, f) => lib.sortBy(a, f)[0],
      capitalize: (s) => (s ? String(s).charAt(0).toUpperCase() + String(s).slice(1).toLowerCase() : ""),
      upperFirst: (s) => (s ? String(s).charAt(0).toUpperCase() + String(s).slice(1) : ""),
      lowerFirst: (s) => (s ? String(s).charAt(0).toLowerCase() + String(s).slice(1) : ""),
      toLower: (s) => String(s == null ? "" : s).toLowerCase(),
      toUpper: (s) => String(s == null ? "" : s).toUpperCase(),
      trim: (s) => String(s == null ? "" : s).trim(),
      startsWith: (s, t) => String(s).startsWith(t),
      endsWith: (s, t) => String(s).endsWith(t),
      padStart: (s, n, c) => String(s).padStart(n, c === undefined ? " " : c),
      padEnd: (s, n, c) => String(s).padEnd(n, c === undefined ? " " : c),
      repeat: (s, n) => String(s).repeat(n),
      split: (s, sep, limit) => String(s).split(sep, limit),
      replace: (s, a, b) => String(s).replace(a, b),
      camelCase: (s) => String(s).toLowerCase().replace(/[^a-z0-9]+(.)/g, (m, c) => c.toUpperCase()).replace(/[^a-z0-9]/gi, ""),
      kebabCase: (s) => String(s).replace(/([a-z])([A-Z])/g, "$1-$2").replace(/[^a-zA-Z0-9]+/g, "-").replace(/^-|-$/g, "").toLowerCase(),
      snakeCase: (s) => String(s).replace(/([a-z])([A-Z])/g, "$1_$2").replace(/[^a-zA-Z0-9]+/g, "_").replace(/^_|_$/g, "").toLowerCase(),
      toString: (v) => (v == null ? "" : String(v)),
      toNumber: (v) => Number(v),
      toInteger: (v) => Math.trunc(Number(v)) || 0,
      identity: (v) => v,
      noop: () => undefined,
      now: () => Date.now(),
      uniqueId: (() => {
        let counter = 0;
        return (prefix) => (prefix || "") + ++counter;
      })(),
    };
    lib.each = lib.forEach;
    lib.contains = lib.includes;
    return lib;
  })();

  function uuid() {
    return __host_uuid();
  }
  uuid.v4 = uuid;

  // ----- property lists (headers, query parameters)
  class PropertyList {
    constructor(members) {
      this.members = (members || []).map((m) => ({ key: String(m.key), value: m.value === undefined ? "" : m.value, disabled: m.disabled }));
    }
    find(name) {
      const lower = String(name).toLowerCase();
      return this.members.find((m) => !m.disabled && m.key.toLowerCase() === lower);
    }
    get(name) {
      const member = this.find(name);
      return member ? member.value : undefined;
    }
    one(name) {
      return this.find(name);
    }
    has(name, value) {
      const member = this.find(name);
      return arguments.length > 1 ? !!member && member.value === value : !!member;
    }
    add(item) {
      this.members.push({ key: String(item.key), value: item.value === undefined ? "" : String(item.value) });
    }
    append(item) {
      this.add(item);
    }
    upsert(item) {
      const member = this.find(item.key);
      if (member) member.value = String(item.value);
      else this.add(item);
    }
    remove(predicate) {
      const test = typeof predicate === "function" ? predicate : (m) => m.key.toLowerCase() === String(predicate).toLowerCase();
      this.members = this.members.filter((m) => !test(m));
    }
    clear() {
      this.members = [];
    }
    all() {
      return this.members.filter((m) => !m.disabled);
    }
    count() {
      return this.all().length;
    }
    idx(i) {
      return this.all()[i];
    }
    each(fn) {
      this.all().forEach(fn);
    }
    map(fn) {
      return this.all().map(fn);
    }
    filter(fn) {
      return this.all().filter(fn);
    }
    toObject() {
      const out = {};
      this.all().forEach((m) => (out[m.key] = m.value));
      return out;
    }
    toJSON() {
      return this.all().map((m) => ({ key: m.key, value: m.value }));
    }
    toString() {
      return this.all().map((m) => m.key + ": " + m.value).join("\n");
    }
  }

  class Url {
    constructor(raw) {
      this.update(raw);
    }
    update(raw) {
      const text = String(raw);
      const hashAt = text.indexOf("#");
      const withoutHash = hashAt === -1 ? text : text.slice(0, hashAt);
      this.hash = hashAt === -1 ? undefined : text.slice(hashAt + 1);
      const queryAt = withoutHash.indexOf("?");
      const base = queryAt === -1 ? withoutHash : withoutHash.slice(0, queryAt);
      const query = queryAt === -1 ? "" : withoutHash.slice(queryAt + 1);
      const match = /^(?:([a-zA-Z][a-zA-Z0-9+.-]*):\/\/)?([^/]*)(.*)$/.exec(base);
      this.protocol = match[1];
      const hostPort = match[2];
      const colon = hostPort.lastIndexOf(":");
      this.host = (colon === -1 ? hostPort : hostPort.slice(0, colon)).split(".");
      this.port = colon === -1 ? undefined : hostPort.slice(colon + 1);
      this.path = match[3].split("/").slice(1);
      this.query = new PropertyList(query === "" ? [] : query.split("&").map((pair) => {
        const eq = pair.indexOf("=");
        return eq === -1 ? { key: pair, value: null } : { key: pair.slice(0, eq), value: pair.slice(eq + 1) };
      }));
    }
    getHost() {
      return this.host.join(".");
    }
    getPath() {
      return "/" + this.path.join("/");
    }
    getQueryString() {
      return this.query.all().map((q) => (q.value === null ? q.key : q.key + "=" + q.value)).join("&");
    }
    getPathWithQuery() {
      const query = this.getQueryString();
      return this.getPath() + (query ? "?" + query : "");
    }
    getRemote() {
      return this.getHost() + (this.port ? ":" + this.port : "");
    }
    toString() {
      const query = this.getQueryString();
      return (this.protocol ? this.protocol + "://" : "") + this.getRemote() + (this.path.length ? this.getPath() : "") +
        (query ? "?" + query : "") + (this.hash !== undefined ? "#" + this.hash : "");
    }
    toJSON() {
      return this.toString();
    }
  }

  // ----- variable scopes
  class VariableScope {
    constructor(name, members, readOnly) {
      this.__name = name;
      this.__values = new Map(members || []);
      this.__readOnly = !!readOnly;
    }
    get(key) {
      return this.__values.get(String(key));
    }
    has(key) {
      return this.__values.has(String(key));
    }
    set(key, value) {
      if (this.__readOnly) throw new TypeError("pm.iterationData is read-only");
      this.__values.set(String(key), value);
    }
    unset(key) {
      if (this.__readOnly) throw new TypeError("pm.iterationData is read-only");
      this.__values.delete(String(key));
    }
    clear() {
      if (this.__readOnly) throw new TypeError("pm.iterationData is read-only");
      this.__values.clear();
    }
    toObject() {
      const out = {};
      this.__values.forEach((v, k) => (out[k] = v));
      return out;
    }
    toJSON() {
      return this.toObject();
    }
    replaceIn(template) {
      return resolve(template, [this]);
    }
    entries() {
      return Array.from(this.__values.entries());
    }
  }

  function resolve(template, scopes) {
    if (typeof template !== "string") return template;
    return __host_resolve(template, JSON.stringify(scopes.map((s) => s.entries())));
  }

  // ----- responses (pm.response and pm.sendRequest's callbacks)
  function makeResponse(raw) {
    const response = {
      __postmanResponse: true,
      code: raw.code,
      status: raw.status,
      headers: new PropertyList(raw.headers),
      responseTime: raw.responseTime,
      responseSize: raw.responseSize,
      text() {
        return raw.body;
      },
      json() {
        return JSON.parse(raw.body);
      },
      reason() {
        return raw.status;
      },
      size() {
        return { body: raw.responseSize, header: 0, total: raw.responseSize };
      },
      toJSON() {
        return { code: raw.code, status: raw.status, headers: this.headers.toJSON(), responseTime: raw.responseTime, body: raw.body };
      },
    };
    Object.defineProperty(response, "to", { get: () => chai.expect(response).to });
    Object.defineProperty(response, "body", { get: () => raw.body });
    return response;
  }

  function makeRequest(raw) {
    let url = new Url(raw.url);
    const request = {
      id: raw.id,
      name: raw.name,
      method: raw.method,
      headers: new PropertyList(raw.headers),
      body: raw.body ? Object.assign({ toString() { return raw.body.raw || ""; } }, raw.body) : undefined,
      addHeader(header) {
        this.headers.add(header);
      },
      removeHeader(name) {
        this.headers.remove(name);
      },
      upsertHeader(header) {
        this.headers.upsert(header);
      },
      toJSON() {
        return { url: url.toString(), method: this.method, header: this.headers.toJSON(), body: this.body };
      },
    };
    Object.defineProperty(request, "url", {
      enumerable: true,
      get: () => url,
      set: (value) => (url = value instanceof Url ? value : new Url(value)),
    });
    return request;
  }

  // ----- one execution
  let state = null;

  function describeError(err) {
    if (err && typeof err === "object") return { name: String(err.name || "Error"), message: String(err.message) };
    return { name: "Error", message: String(err) };
  }

  function format(args) {
    return Array.prototype.map.call(args, (a) => (typeof a === "string" ? a : inspect(a))).join(" ");
  }

  function sendRequest(request, callback) {
    const spec = typeof request === "string" ? { url: request } : request || {};
    const id = state.nextPendingId++;
    let headers = spec.header || spec.headers || [];
    if (headers instanceof PropertyList) headers = headers.toJSON();
    else if (!Array.isArray(headers)) headers = Object.keys(headers).map((k) => ({ key: k, value: String(headers[k]) }));
    const body = spec.body && typeof spec.body === "object" ? spec.body : spec.body === undefined ? undefined : { mode: "raw", raw: String(spec.body) };
    state.pending.push({
      id,
      request: { url: String(spec.url), method: String(spec.method || "GET").toUpperCase(), header: headers, body },
    });
    state.callbacks[id] = callback;
  }

  function runTest(name, fn, skipped) {
    const test = { name: String(name), passed: true, skipped: !!skipped, error: null };
    state.tests.push(test);
    if (skipped || typeof fn !== "function") return;
    try {
      if (fn.length > 0) {
        fn((err) => {
          if (err) {
            test.passed = false;
            test.error = describeError(err);
          }
        });
      } else {
        fn();
      }
    } catch (err) {
      test.passed = false;
      test.error = describeError(err);
    }
  }

  function buildGlobals(input) {
    const s = input.scopes;
    const scopes = {
      local: new VariableScope("local", s.local),
      data: new VariableScope("data", s.data, true),
      environment: new VariableScope("environment", s.environment),
      collection: new VariableScope("collection", s.collection),
      globals: new VariableScope("globals", s.globals),
    };
    state.scopes = scopes;
    const layered = () => [scopes.local, scopes.data, scopes.environment, scopes.collection, scopes.globals];
    const variables = {
      get(key) {
        for (const scope of layered()) if (scope.has(key)) return scope.get(key);
        return undefined;
      },
      has(key) {
        return layered().some((scope) => scope.has(key));
      },
      set(key, value) {
        scopes.local.set(key, value);
      },
      unset(key) {
        scopes.local.unset(key);
      },
      clear() {
        scopes.local.clear();
      },
      toObject() {
        const out = {};
        layered().slice().reverse().forEach((scope) => Object.assign(out, scope.toObject()));
        return out;
      },
      replaceIn(template) {
        return resolve(template, layered());
      },
    };
    const request = makeRequest(input.request);
    state.request = request;
    // Prerequest scripts have no `pm.response`; after a request error newman
    // still gives test scripts one, with no code.
    const empty = { headers: [], body: "", responseSize: 0 };
    const response = input.response || input.info.eventName === "test" ? makeResponse(input.response || empty) : undefined;
    const received = !!input.response;
    scopes.environment.name = input.environmentName;

    const setNextRequest = (name) => {
      state.nextRequest = { value: name === undefined ? null : name };
    };
    const pm = {
      info: Object.freeze(Object.assign({}, input.info)),
      request,
      response,
      environment: scopes.environment,
      collectionVariables: scopes.collection,
      globals: scopes.globals,
      iterationData: scopes.data,
      variables,
      expect: chai.expect,
      sendRequest,
      execution: {
        setNextRequest,
        skipRequest() {
          state.skipRequest = true;
        },
        location: Object.freeze([input.info.requestName]),
      },
      cookies: new PropertyList(input.cookies),
      test(name, fn) {
        runTest(name, fn, false);
        return pm;
      },
    };
    pm.test.skip = (name, fn) => runTest(name, fn, true);

    const tests = {};
    state.legacyTests = tests;
    const setter = (scope) => (key, value) => scope.set(key, value === undefined || value === null ? value : String(value));
    const postman = {
      setEnvironmentVariable: setter(scopes.environment),
      getEnvironmentVariable: (key) => scopes.environment.get(key),
      clearEnvironmentVariable: (key) => scopes.environment.unset(key),
      clearEnvironmentVariables: () => scopes.environment.clear(),
      setGlobalVariable: setter(scopes.globals),
      getGlobalVariable: (key) => scopes.globals.get(key),
      clearGlobalVariable: (key) => scopes.globals.unset(key),
      clearGlobalVariables: () => scopes.globals.clear(),
      getResponseHeader: (name) => (received ? response.headers.get(name) : undefined),
      getResponseCookie: () => undefined,
      setNextRequest,
    };
    const requireTable = {
      lodash: _,
      uuid,
      "crypto-js": CryptoJS,
      chai: { expect: chai.expect, AssertionError: chai.AssertionError },
      atob: atob,
      btoa: btoa,
    };
    const sandboxRequire = (name) => {
      if (Object.prototype.hasOwnProperty.call(requireTable, name)) return requireTable[name];
      throw new Error("Cannot find module '" + name + "'");
    };
    const consoleObject = {};
    ["log", "info", "warn", "error", "debug"].forEach((level) => {
      consoleObject[level] = function () {
        state.console.push({ level, message: format(arguments) });
      };
    });
    const legacyHeaders = received ? response.headers.toObject() : {};
    return {
      pm,
      postman,
      tests,
      console: consoleObject,
      require: sandboxRequire,
      _,
      CryptoJS,
      atob,
      btoa,
      xml2Json: (text) => JSON.parse(__host_xml2json(String(text))),
      environment: scopes.environment.toObject(),
      globals: scopes.globals.toObject(),
      data: scopes.data.toObject(),
      iteration: input.info.iteration,
      request: {
        id: input.request.id,
        name: input.request.name,
        url: input.request.url,
        method: input.request.method,
        headers: request.headers.toObject(),
        data: input.request.body && input.request.body.raw !== undefined ? input.request.body.raw : {},
      },
      responseBody: received ? response.text() : undefined,
      responseCode: received ? { code: response.code, name: response.status, detail: response.status } : undefined,
      responseHeaders: legacyHeaders,
      responseTime: received ? response.responseTime : undefined,
    };
  }

  global.__execute = function (inputJson) {
    const input = JSON.parse(inputJson);
    state = { tests: [], console: [], pending: [], callbacks: {}, nextPendingId: 0, error: null, nextRequest: null, skipRequest: false };
    const names = [];
    const values = [];
    const provided = buildGlobals(input);
    Object.keys(provided).forEach((name) => {
      names.push(name);
      values.push(provided[name]);
    });
    try {
      const fn = Function.apply(null, names.concat([input.code]));
      fn.apply(undefined, values);
    } catch (err) {
      state.error = describeError(err);
    }
    return JSON.stringify({ pending: state.pending.splice(0) });
  };

  global.__deliver = function (deliveriesJson) {
    JSON.parse(deliveriesJson).forEach((delivery) => {
      const callback = state.callbacks[delivery.id];
      delete state.callbacks[delivery.id];
      if (typeof callback !== "function") return;
      try {
        if (delivery.error) callback(new Error(delivery.error), undefined);
        else callback(null, makeResponse(delivery.response));
      } catch (err) {
        if (!state.error) state.error = describeError(err);
      }
    });
    return JSON.stringify({ pending: state.pending.splice(0) });
  };

  global.__finish = function () {
    Object.keys(state.legacyTests).forEach((name) => {
      const passed = !!state.legacyTests[name];
      state.tests.push({ name, passed, skipped: false, error: passed ? null : { name: "AssertionError", message: "expected " + inspect(state.legacyTests[name]) + " to be truthy" } });
    });
    const scopes = {};
    Object.keys(state.scopes).forEach((k) => (scopes[k] = state.scopes[k].entries()));
    const request = state.request;
    const out = {
      tests: state.tests,
      console: state.console,
      error: state.error,
      nextRequest: state.nextRequest,
      skipRequest: state.skipRequest,
      scopes,
      request: { url: request.url.toString(), method: request.method, headers: request.headers.toJSON(), body: request.body },
    };
    state = null;
    return JSON.stringify(out);
  };
})(globalThis);
