// The reference side of `tests/data_differential.rs`: loads data files with
// newman 6.2.2's own loader (`newman/lib/run/options.js`: chardet decoding,
// JSON first, then csv-parse with newman's options and cast) and gives each
// run's iteration data as postman-runtime hands it to scripts (a non-array
// becomes one empty row; an element's own properties in JavaScript order).
//
// Usage: node newman_data.js <node_modules> data <list.json>   (file paths)
//        node newman_data.js <node_modules> numbers <list.json> (numbers as text)
// Prints one JSON array: per input, {rows: [[[key, value]…]…]} or {error},
// and `chardet` when newman's own decoding differs (see below).
const path = require('path');
const fs = require('fs');

const [modules, mode, list] = process.argv.slice(2);
const loadOptions = require(path.join(modules, 'newman/lib/run/options'));
const util = require(path.join(modules, 'newman/lib/util'));
const inputs = JSON.parse(fs.readFileSync(list, 'utf8'));

// chardet sometimes calls a valid UTF-8 file ISO-8859-1 (a few non-ASCII
// characters among control bytes), and newman then reads mojibake. The
// runner reads valid UTF-8 as UTF-8; for those files the answer is
// newman's loader with the decoding the runner uses, marked `chardet`.
const detect = util.detectEncoding;
let forceUtf8 = false;
util.detectEncoding = (buffer) => (forceUtf8 ? 'utf8' : detect(buffer));
const validUtf8 = (buffer) => {
    try {
        new TextDecoder('utf-8', { fatal: true }).decode(buffer);

        return true;
    }
    catch (e) {
        return false;
    }
};

// Numbers keep their JavaScript text, -0 included.
const tag = (value) => typeof value === 'number' ?
    { number: Object.is(value, -0) ? '-0' : String(value) } :
    value;

const row = (element) => (typeof element === 'object' && element !== null) ?
    Object.entries(element).map(([key, value]) => [key, tag(value)]) :
    [];

const loadAs = (file) => new Promise((resolve) => {
    loadOptions({ collection: { info: { name: 'data' }, item: [] }, iterationData: file }, (err, result) => {
        if (err) {
            return resolve({ error: err.message });
        }
        const data = result.iterationData;

        resolve({ rows: Array.isArray(data) ? data.map(row) : [[]] });
    });
});

const load = async (file) => {
    const bytes = fs.readFileSync(file);

    if (detect(bytes) !== 'latin1' || !validUtf8(bytes) || bytes.every((b) => b < 0x80)) {
        return loadAs(file);
    }
    forceUtf8 = true;
    const read = await loadAs(file);

    forceUtf8 = false;

    return { ...read, chardet: 'latin1' };
};

(async () => {
    const out = mode === 'numbers' ?
        inputs.map((text) => String(Number(text))) :
        await inputs.reduce(async (done, file) => [...await done, await load(file)], Promise.resolve([]));

    process.stdout.write(JSON.stringify(out));
})();
