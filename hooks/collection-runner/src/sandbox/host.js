// The host side of postman-sandbox, for the QuickJS engine the runner embeds:
// what uvm's Node bridge and postman-runtime's event command do around the
// sandbox in newman. Loaded before `postman-sandbox.js`, because the sandbox
// takes its timers from the globals it finds at boot and then deletes every
// global it does not allow; what the host keeps lives in this `var` binding,
// which cannot be deleted.
//
// The Rust side (`sandbox.rs`) calls `__host.attach()` once after the bundle
// has booted, then per script `__host.execute(json)`, `__host.deliver(json)`
// while the script waits, and `__host.finish()`; every answer is JSON text.
// Messages cross the bridge in Flatted's format, as between uvm's two sides.
var __host = (function (global) {
  'use strict';

  var slice = Array.prototype.slice;
  var now = Date.now;
  var timers = [];
  var lastTimer = 0;
  var inbox = [];
  var dispatch = null;
  var run = null;

  function addTimer(fn, ms, args, every) {
    var delay = Math.max(0, Number(ms) || 0);
    lastTimer += 1;
    timers.push({ id: lastTimer, fn: fn, args: args, due: now() + delay, every: every ? delay : null });
    return lastTimer;
  }

  function clearTimer(id) {
    timers = timers.filter(function (timer) { return timer.id !== id; });
  }

  // The timers postman-sandbox's `timers.js` wraps for scripts.
  global.setTimeout = function (fn, ms) { return addTimer(fn, ms, slice.call(arguments, 2), false); };
  global.setInterval = function (fn, ms) { return addTimer(fn, ms, slice.call(arguments, 2), true); };
  global.setImmediate = function (fn) { return addTimer(fn, 0, slice.call(arguments, 1), false); };
  global.clearTimeout = clearTimer;
  global.clearInterval = clearTimer;
  global.clearImmediate = clearTimer;
  // Every V8 context has a `console` that writes to the inspector only; the
  // libraries in the bundle (ajv's logger, for one) expect it. Scripts get
  // postman-sandbox's own console instead.
  var quiet = function () {};
  global.console = ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir', 'dirxml', 'table', 'time',
    'timeEnd', 'timeLog', 'assert', 'count', 'countReset', 'group', 'groupCollapsed', 'groupEnd', 'clear']
    .reduce(function (c, name) { c[name] = quiet; return c; }, {});
  // What uvm's bridge client sends the host.
  global.__uvm_emit = function (text) { inbox.push(text); };

  // Flatted's `stringify` for the acyclic JSON values the host sends: every
  // object and string is an entry of one list, referred to by its index.
  function flatten(value) {
    var list = [];
    function put(v) {
      if (typeof v === 'string') {
        list.push(v);
        return String(list.length - 1);
      }
      if (v === null || typeof v !== 'object') {
        return v;
      }
      var index = list.length;
      var out = Array.isArray(v) ? [] : {};
      list.push(out);
      Object.keys(v).forEach(function (key) {
        var entry = put(v[key]);
        entry !== undefined && (out[key] = entry);
      });
      return String(index);
    }
    put(value);
    return JSON.stringify(list);
  }

  // Flatted's `parse`: strings inside entries are indices of other entries.
  function unflatten(text) {
    var list = JSON.parse(text);
    var revived = {};
    function at(index) {
      var v = list[index];
      if (v === null || typeof v !== 'object') {
        return v;
      }
      if (revived[index]) {
        return revived[index];
      }
      var out = Array.isArray(v) ? [] : {};
      revived[index] = out;
      Object.keys(v).forEach(function (key) {
        out[key] = typeof v[key] === 'string' ? at(Number(v[key])) : v[key];
      });
      return out;
    }
    return at(0);
  }

  function send() {
    dispatch(flatten(slice.call(arguments)));
  }

  function sdk() {
    return global.require('postman-collection');
  }

  // A request as the runner sends it: the URL as text, enabled headers only.
  function outgoing(json) {
    var request = new (sdk().Request)(json);
    return {
      url: request.url.toString(),
      method: request.method,
      headers: request.headers.all()
        .filter(function (h) { return !h.disabled; })
        .map(function (h) { return { key: h.key, value: h.value === undefined ? '' : String(h.value) }; }),
      body: request.body ? request.body.toJSON() : undefined
    };
  }

  function pairs(scope) {
    return ((scope && scope.values) || [])
      .filter(function (v) { return !v.disabled; })
      .map(function (v) { return [v.key, v.value === undefined ? null : v.value]; });
  }

  // newman's CLI reporter prints each console argument through util.inspect
  // (depth 25) and joins them with ", ". The arguments come in
  // teleport-javascript's format, Flatted's for JSON values (the sandbox does
  // not expose the module by name).
  function consoleLine(level, args) {
    var inspect = global.require('util').inspect;
    var values = unflatten(args);
    return {
      level: String(level),
      message: values.map(function (value) { return inspect(value, { depth: 25 }); }).join(', ')
    };
  }

  function error(err) {
    return err ? { name: String(err.name || 'Error'), message: String(err.message || err) } : null;
  }

  function take(message) {
    var name = message[0];
    var id = run.id;
    if (name === 'execution.assertion.' + id) {
      (message[2] || []).forEach(function (a) {
        run.tests.push({ name: String(a.name), passed: !!a.passed, skipped: !!a.skipped, error: a.passed ? null : error(a.error) });
      });
    } else if (name === 'execution.console') {
      run.console.push(consoleLine(message[2], message[3]));
    } else if (name === 'execution.request.' + id) {
      var r = outgoing(message[4]);
      run.requests.push({ id: message[3], request: { url: r.url, method: r.method, header: r.headers, body: r.body } });
    } else if (name === 'execution.skipRequest.' + id) {
      run.skip = true;
    } else if (name === 'execution.cookies.' + id) {
      // pm.cookies.jar(): the runner's jar is not open to scripts; the
      // callback gets this error (as newman's with no jar), never silence.
      send('execution.cookies.' + id, message[1], 'CookieStore: pm.cookies.jar() is not supported by this runner');
    } else if (name === 'execution.result.' + id) {
      run.error = error(message[1]);
      run.result = message[2] || {};
    }
  }

  // Runs the sandbox until the script finishes or waits on the host.
  function pump() {
    for (var rounds = 0; rounds < 100000; rounds += 1) {
      while (inbox.length) {
        take(unflatten(inbox.shift()));
      }
      if (run.result) {
        return JSON.stringify({ done: true });
      }
      if (run.requests.length) {
        return JSON.stringify({ requests: run.requests.splice(0) });
      }
      if (!timers.length) {
        return JSON.stringify({ stalled: true });
      }
      var next = timers.reduce(function (a, b) { return b.due < a.due ? b : a; });
      var wait = next.due - now();
      if (wait > 0) {
        return JSON.stringify({ wait: wait });
      }
      if (next.every === null) {
        clearTimer(next.id);
      } else {
        next.due += Math.max(1, next.every);
      }
      next.fn.apply(null, next.args);
    }
    return JSON.stringify({ stalled: true });
  }

  return {
    attach: function () {
      dispatch = global.__uvm_dispatch;
      // Scripts must not speak for the sandbox: uvm removes these too.
      delete global.__uvm_dispatch;
      delete global.__uvm_emit;
      send('initialize', {});
      while (inbox.length) {
        var message = unflatten(inbox.shift());
        if (message[0] === 'initialize') {
          return JSON.stringify({ initialized: message[1] ? error(message[1]) : true });
        }
      }
      return JSON.stringify({ initialized: false });
    },

    execute: function (json) {
      var input = JSON.parse(json);
      run = { id: input.id, tests: [], console: [], requests: [], skip: false, error: null, result: null };
      timers = [];
      send('execute', input.id, input.event, input.context, input.options);
      return pump();
    },

    deliver: function (json) {
      JSON.parse(json).forEach(function (d) {
        send('execution.response.' + run.id, d.id, d.error ? { name: 'Error', message: d.error } : null,
          d.response || null, { cookies: [] });
      });
      return pump();
    },

    finish: function () {
      // What the sandbox said before an interrupted script stopped.
      while (inbox.length) {
        take(unflatten(inbox.shift()));
      }
      var result = run.result || {};
      var done = run;
      var ret = result['return'] || {};
      run = null;
      timers = [];
      return JSON.stringify({
        tests: done.tests,
        console: done.console,
        error: done.error,
        nextRequest: Object.prototype.hasOwnProperty.call(ret, 'nextRequest')
          ? { value: ret.nextRequest === null || ret.nextRequest === undefined ? null : String(ret.nextRequest) }
          : null,
        skipRequest: done.skip,
        scopes: done.result ? {
          local: pairs(result._variables),
          environment: pairs(result.environment),
          collection: pairs(result.collectionVariables),
          globals: pairs(result.globals)
        } : null,
        request: done.result && result.request ? outgoing(result.request) : null
      });
    }
  };
}(globalThis));
