# The demo model's corpora: four skills (code, linux-commands, python-automation, troubleshooting) as
# instruction -> answer pairs, and a general chat + text mix for the base, all drawn from templates by a seeded
# random.Random. Answers are short and formulaic (a command, a few lines of code, one diagnosis) so a ~4 M parameter
# model learns them and a greedy answer is recognisably right; every item carries the checks that say so.
import random

SKILLS = ['code', 'linux-commands', 'python-automation', 'troubleshooting']

# value pools ---------------------------------------------------------------------------------------------------
DIRS = ['/var/log', '/tmp', '/home/alice', '/srv/data', '/etc/nginx', '/opt/app', 'src', 'docs', 'build', 'logs',
        'backups', 'photos', 'reports', 'data', 'scripts', '/var/www', '/mnt/usb', 'downloads', 'music', 'notes']
FILES = ['app.log', 'notes.txt', 'data.csv', 'config.yaml', 'server.py', 'index.html', 'report.md', 'error.log',
         'access.log', 'main.go', 'todo.txt', 'users.json', 'backup.sql', 'deploy.sh', 'run.sh', 'README.md',
         'syslog', 'output.txt', 'results.tsv', 'settings.ini']
SCRIPTS = ['deploy.sh', 'run.sh', 'build.sh', 'backup.sh', 'start.sh', 'install.sh', 'cleanup.sh', 'test.sh']
WORDS = ['error', 'timeout', 'TODO', 'password', 'warning', 'failed', 'denied', 'main', 'import', 'user', 'token',
         'debug', 'panic', 'refused', 'disk']
SERVICES = ['nginx', 'postgresql', 'redis', 'docker', 'ssh', 'apache2', 'mysql', 'cron', 'grafana', 'mongod']
USERS = ['alice', 'bob', 'carol', 'deploy', 'www-data', 'admin', 'dave', 'erin']
PORTS = ['80', '443', '3000', '5432', '6379', '8080', '8000', '9090', '22', '5000', '27017', '3306']
HOSTS = ['web1', 'db2', 'api.local', 'cache01', 'build-box', 'node3', 'backend', 'staging']
DOMAINS = ['example.com', 'shop.test', 'api.example.org', 'mysite.dev', 'intranet.lan', 'blog.example.net']
URLS = ['https://example.com/data.csv', 'https://example.org/file.zip', 'https://api.example.com/status',
        'https://files.test/report.pdf', 'https://example.net/index.html', 'https://cdn.example.com/app.js']
ARCHIVES = ['backup', 'site', 'logs', 'project', 'photos', 'release', 'data', 'archive']
MODULES = ['requests', 'numpy', 'pandas', 'flask', 'yaml', 'django', 'boto3', 'pytest', 'redis', 'scipy']
COMMANDS = ['git', 'docker', 'node', 'htop', 'jq', 'curl', 'make', 'kubectl', 'python3', 'npm']
PIDS = ['1234', '4321', '987', '31337', '2048', '777', '5555', '8080', '4096', '15021']
NUMS = ['3', '5', '10', '20', '15', '50', '100', '25', '7', '12']
FUNC_NAMES = ['add', 'total', 'combine', 'calc', 'compute', 'result', 'apply', 'mix', 'merge', 'join', 'pair',
              'score', 'value', 'mathOp', 'doIt']
ARRAYS = ['items', 'numbers', 'values', 'scores', 'prices', 'list', 'names', 'ids', 'ages', 'tags']
STRVARS = ['name', 'title', 'text', 'label', 'word', 'message', 'city', 'greeting']
TABLES = ['users', 'orders', 'products', 'customers', 'invoices', 'employees', 'books', 'events']
COLUMNS = ['id', 'age', 'status', 'price', 'country', 'year', 'rating', 'total']
TYPENAMES = ['User', 'Order', 'Product', 'Point', 'Book', 'Task', 'Item', 'Account', 'Event', 'Car']
FIELDS = ['id', 'name', 'email', 'price', 'title', 'count', 'age', 'city', 'score', 'label']
EXTS = ['txt', 'md', 'log', 'csv', 'jpeg', 'jpg', 'html', 'json', 'bak', 'old']
ENVVARS = ['HOME', 'PATH', 'API_KEY', 'DATABASE_URL', 'USER', 'PORT', 'DEBUG', 'TOKEN']
PYFUNCS = ['backup', 'send_report', 'cleanup', 'sync_files', 'check_disk', 'fetch_data', 'rotate_logs', 'ping']
TEXTS = ['hello', 'done', 'ok', 'started', 'hello world', 'finished', 'ready']
PROCS = ['java', 'node', 'python3', 'postgres', 'chrome', 'mysqld', 'ruby', 'redis-server']


def pick(rng, pool):
    return pool[rng.randrange(len(pool))]


def lead(rng, text, forms):
    """One of several phrasings of the same instruction: `text` is imperative, lower-case first letter."""
    form = pick(rng, forms)
    out = form.format(t=text)
    return out[0].upper() + out[1:]


CMD_FORMS = ['{t}', '{t}', 'how do I {t}?', 'what is the command to {t}?', 'linux: {t}', '{t} in the terminal',
             'bash: how can I {t}?', 'which command will {t}?']


# linux-commands: request -> one shell command; checks: the command with its values --------------------------------
def linux_item(rng):
    k = rng.randrange(20)
    if k == 0:
        t, a = pick(rng, ['show disk usage by folder', 'show the size of each folder here', 'show how much space each folder takes']), 'du -sh */'
        return lead(rng, t, CMD_FORMS), a, ['du -sh']
    if k == 1:
        d = pick(rng, DIRS)
        t = pick(rng, ['show the disk usage of {d}', 'show how big {d} is', 'show the total size of {d}']).format(d=d)
        return lead(rng, t, CMD_FORMS), f'du -sh {d}', [f'du -sh {d}']
    if k == 2:
        d, e = pick(rng, DIRS), pick(rng, EXTS)
        t = pick(rng, ['find all .{e} files under {d}', 'find files ending in .{e} in {d}', 'list every .{e} file below {d}']).format(d=d, e=e)
        return lead(rng, t, CMD_FORMS), f"find {d} -name '*.{e}'", [f'find {d}', f'*.{e}']
    if k == 3:
        f = pick(rng, FILES)
        t = pick(rng, ['count the lines in {f}', 'count how many lines {f} has', 'show the number of lines of {f}']).format(f=f)
        return lead(rng, t, CMD_FORMS), f'wc -l {f}', [f'wc -l {f}']
    if k == 4:
        f, n = pick(rng, FILES), pick(rng, NUMS)
        t = pick(rng, ['show the last {n} lines of {f}', 'print the final {n} lines of {f}', 'view the last {n} lines in {f}']).format(f=f, n=n)
        return lead(rng, t, CMD_FORMS), f'tail -n {n} {f}', [f'tail -n {n} {f}']
    if k == 5:
        f, n = pick(rng, FILES), pick(rng, NUMS)
        t = pick(rng, ['show the first {n} lines of {f}', 'print the top {n} lines of {f}', 'view the first {n} lines in {f}']).format(f=f, n=n)
        return lead(rng, t, CMD_FORMS), f'head -n {n} {f}', [f'head -n {n} {f}']
    if k == 6:
        f, w = pick(rng, FILES), pick(rng, WORDS)
        t = pick(rng, ['search for {w} in {f}', 'find the lines containing {w} in {f}', 'grep {f} for {w}']).format(f=f, w=w)
        return lead(rng, t, CMD_FORMS), f"grep '{w}' {f}", [f"grep '{w}' {f}"]
    if k == 7:
        d, w = pick(rng, DIRS), pick(rng, WORDS)
        t = pick(rng, ['search for {w} in every file under {d}', 'search recursively for {w} in {d}', 'find {w} in all files of {d}']).format(d=d, w=w)
        return lead(rng, t, CMD_FORMS), f"grep -r '{w}' {d}", [f"grep -r '{w}' {d}"]
    if k == 8:
        f = pick(rng, SCRIPTS)
        t = pick(rng, ['make {f} executable', 'give {f} execute permission', 'allow {f} to be run']).format(f=f)
        return lead(rng, t, CMD_FORMS), f'chmod +x {f}', [f'chmod +x {f}']
    if k == 9:
        s = pick(rng, SERVICES)
        t = pick(rng, ['restart the {s} service', 'restart {s}', 'reload and restart the {s} daemon']).format(s=s)
        return lead(rng, t, CMD_FORMS), f'sudo systemctl restart {s}', [f'systemctl restart {s}']
    if k == 10:
        s = pick(rng, SERVICES)
        t = pick(rng, ['show the logs of {s}', 'read the journal of the {s} service', 'view the log messages of {s}']).format(s=s)
        return lead(rng, t, CMD_FORMS), f'journalctl -u {s}', [f'journalctl -u {s}']
    if k == 11:
        f, d = pick(rng, FILES), pick(rng, DIRS)
        t = pick(rng, ['copy {f} to {d}', 'copy the file {f} into {d}', 'put a copy of {f} in {d}']).format(f=f, d=d)
        return lead(rng, t, CMD_FORMS), f'cp {f} {d}/', [f'cp {f} {d}']
    if k == 12:
        d = pick(rng, DIRS)
        t = pick(rng, ['create a folder named {d}', 'make the directory {d}', 'create the directory {d} with its parents']).format(d=d)
        return lead(rng, t, CMD_FORMS), f'mkdir -p {d}', [f'mkdir -p {d}']
    if k == 13:
        d, a = pick(rng, DIRS), pick(rng, ARCHIVES)
        t = pick(rng, ['compress {d} into {a}.tar.gz', 'pack {d} into the archive {a}.tar.gz', 'make a tar.gz of {d} called {a}.tar.gz']).format(d=d, a=a)
        return lead(rng, t, CMD_FORMS), f'tar -czf {a}.tar.gz {d}', [f'tar -czf {a}.tar.gz {d}']
    if k == 14:
        a = pick(rng, ARCHIVES)
        t = pick(rng, ['extract {a}.tar.gz', 'unpack the archive {a}.tar.gz', 'uncompress {a}.tar.gz here']).format(a=a)
        return lead(rng, t, CMD_FORMS), f'tar -xzf {a}.tar.gz', [f'tar -xzf {a}.tar.gz']
    if k == 15:
        t = pick(rng, ['show free memory', 'show how much memory is free', 'check the memory usage'])
        return lead(rng, t, CMD_FORMS), 'free -h', ['free -h']
    if k == 16:
        d = pick(rng, DIRS)
        t = pick(rng, ['list all files in {d} including hidden ones', 'list everything in {d} with details', 'show all files of {d}, hidden ones too']).format(d=d)
        return lead(rng, t, CMD_FORMS), f'ls -la {d}', [f'ls -la {d}']
    if k == 17:
        p = pick(rng, PIDS)
        t = pick(rng, ['kill the process with PID {p}', 'stop process {p}', 'terminate the process {p}']).format(p=p)
        return lead(rng, t, CMD_FORMS), f'kill {p}', [f'kill {p}']
    if k == 18:
        p = pick(rng, PORTS)
        t = pick(rng, ['show which process uses port {p}', 'find what is listening on port {p}', 'see who holds port {p}']).format(p=p)
        return lead(rng, t, CMD_FORMS), f'sudo lsof -i :{p}', [f'lsof -i :{p}']
    u, f = pick(rng, USERS), pick(rng, FILES)
    t = pick(rng, ['change the owner of {f} to {u}', 'make {u} the owner of {f}', 'give ownership of {f} to {u}']).format(f=f, u=u)
    return lead(rng, t, CMD_FORMS), f'sudo chown {u} {f}', [f'chown {u} {f}']


# code (JavaScript, TypeScript, SQL) -> a few lines of code ----------------------------------------------------------
OPS = [('adds two numbers', 'a + b', '+'), ('subtracts b from a', 'a - b', '-'), ('multiplies two numbers', 'a * b', '*'),
       ('returns the larger of two numbers', 'Math.max(a, b)', 'Math.max'), ('returns the smaller of two numbers', 'Math.min(a, b)', 'Math.min'),
       ('divides a by b', 'a / b', '/')]
CODE_FORMS = ['{t}', '{t}', 'write code to {t}', 'how do I {t}?', 'show me how to {t}', 'code: {t}', 'can you {t}?']


def code_item(rng):
    k = rng.randrange(10)
    if k == 0:
        n = pick(rng, FUNC_NAMES)
        desc, expr, mark = pick(rng, OPS)
        t = pick(rng, ['write a JavaScript function {n} that {d}', 'write a JS function named {n} that {d}', 'define a JavaScript function {n} which {d}']).format(n=n, d=desc)
        return lead(rng, t, ['{t}', '{t}', 'please {t}', 'code: {t}']), f'function {n}(a, b) {{\n  return {expr};\n}}', [f'function {n}(a, b)', f'return {expr};']
    if k == 1:
        tn = pick(rng, TYPENAMES)
        f1, f2 = rng.sample(FIELDS, 2)
        t = pick(rng, ['write a TypeScript interface {tn} with a string {f1} and a number {f2}', 'define a TypeScript type {tn} that has a string {f1} and a number {f2}',
                       'declare an interface {tn} in TypeScript with {f1} as a string and {f2} as a number']).format(tn=tn, f1=f1, f2=f2)
        return lead(rng, t, ['{t}', '{t}', 'please {t}', 'code: {t}']), f'interface {tn} {{\n  {f1}: string;\n  {f2}: number;\n}}', [f'interface {tn}', f'{f1}: string;', f'{f2}: number;']
    if k == 2:
        tb, c, v = pick(rng, TABLES), pick(rng, COLUMNS), pick(rng, NUMS)
        t = pick(rng, ['write a SQL query that selects the rows of {tb} where {c} is {v}', 'select everything from {tb} with {c} equal to {v} in SQL',
                       'SQL: get all {tb} whose {c} is {v}']).format(tb=tb, c=c, v=v)
        return lead(rng, t, CODE_FORMS), f'SELECT * FROM {tb} WHERE {c} = {v};', [f'SELECT * FROM {tb} WHERE {c} = {v}']
    if k == 3:
        tb = pick(rng, TABLES)
        t = pick(rng, ['count the rows of the table {tb} in SQL', 'write a SQL query that counts the {tb}', 'SQL: how many rows does {tb} have']).format(tb=tb)
        return lead(rng, t, CODE_FORMS), f'SELECT COUNT(*) FROM {tb};', [f'SELECT COUNT(*) FROM {tb}']
    if k == 4:
        a, x = pick(rng, ARRAYS), pick(rng, NUMS)
        t = pick(rng, ['check whether the array {a} contains {x} in JavaScript', 'test if {a} includes {x} in JS', 'find out in JavaScript if {x} is in the array {a}']).format(a=a, x=x)
        return lead(rng, t, CODE_FORMS), f'{a}.includes({x})', [f'{a}.includes({x})']
    if k == 5:
        a = pick(rng, ARRAYS)
        t = pick(rng, ['sort the array {a} in ascending order in JavaScript', 'sort the numbers in {a} from small to large in JS', 'order the JavaScript array {a} ascending']).format(a=a)
        return lead(rng, t, CODE_FORMS), f'{a}.sort((a, b) => a - b);', [f'{a}.sort((a, b) => a - b)']
    if k == 6:
        s = pick(rng, STRVARS)
        t = pick(rng, ['convert the string {s} to upper case in JavaScript', 'make {s} all capitals in JS', 'turn the JavaScript string {s} into upper case']).format(s=s)
        return lead(rng, t, CODE_FORMS), f'{s}.toUpperCase()', [f'{s}.toUpperCase()']
    if k == 7:
        n = pick(rng, NUMS)
        t = pick(rng, ['write a JavaScript loop that prints the numbers from 1 to {n}', 'print 1 to {n} with a for loop in JS', 'loop from 1 to {n} in JavaScript and log each number']).format(n=n)
        return lead(rng, t, CODE_FORMS), f'for (let i = 1; i <= {n}; i++) {{\n  console.log(i);\n}}', [f'i <= {n}', 'console.log(i)']
    if k == 8:
        s = pick(rng, STRVARS)
        t = pick(rng, ['parse the JSON string {s} in JavaScript', 'turn the JSON text in {s} into an object in JS', 'decode the JSON in {s} with JavaScript']).format(s=s)
        return lead(rng, t, CODE_FORMS), f'const data = JSON.parse({s});', [f'JSON.parse({s})']
    a = pick(rng, ARRAYS)
    t = pick(rng, ['get the length of the array {a} in JavaScript', 'count the elements of {a} in JS', 'find how many items {a} has in JavaScript']).format(a=a)
    return lead(rng, t, CODE_FORMS), f'{a}.length', [f'{a}.length']


# python-automation -> a short Python snippet --------------------------------------------------------------------------
PY_FORMS = ['{t}', '{t}', 'write a Python script to {t}', 'how do I {t} in Python?', 'python: {t}', 'automate this with Python: {t}']


def python_item(rng):
    k = rng.randrange(12)
    if k == 0:
        d = pick(rng, DIRS)
        t = pick(rng, ['list the files in {d}', 'print the name of every file in {d}', 'show what is inside {d}']).format(d=d)
        return lead(rng, t, PY_FORMS), f'import os\nfor name in os.listdir("{d}"):\n    print(name)', [f'os.listdir("{d}")']
    if k == 1:
        f = pick(rng, ARCHIVES)
        t = pick(rng, ['read the CSV file {f}.csv', 'print each row of {f}.csv', 'load the rows of {f}.csv']).format(f=f)
        return lead(rng, t, PY_FORMS), f'import csv\nwith open("{f}.csv") as f:\n    for row in csv.reader(f):\n        print(row)', [f'open("{f}.csv")', 'csv.reader']
    if k == 2:
        d = pick(rng, DIRS)
        e1, e2 = rng.sample(EXTS, 2)
        t = pick(rng, ['rename every .{e1} file in {d} to .{e2}', 'change the extension of the .{e1} files in {d} to .{e2}', 'turn all .{e1} files of {d} into .{e2} files']).format(d=d, e1=e1, e2=e2)
        return lead(rng, t, PY_FORMS), f'from pathlib import Path\nfor p in Path("{d}").glob("*.{e1}"):\n    p.rename(p.with_suffix(".{e2}"))', [f'Path("{d}").glob("*.{e1}")', f'with_suffix(".{e2}")']
    if k == 3:
        c = pick(rng, COMMANDS)
        t = pick(rng, ['run the command {c} --version', 'call {c} --version and wait for it', 'execute {c} --version as a subprocess']).format(c=c)
        return lead(rng, t, PY_FORMS), f'import subprocess\nsubprocess.run(["{c}", "--version"], check=True)', [f'subprocess.run(["{c}", "--version"]']
    if k == 4:
        u = pick(rng, URLS)
        t = pick(rng, ['download {u}', 'fetch the page {u}', 'get {u} over HTTP']).format(u=u)
        return lead(rng, t, PY_FORMS), f'import requests\nresponse = requests.get("{u}")\nprint(response.text)', [f'requests.get("{u}")']
    if k == 5:
        n = pick(rng, NUMS)
        t = pick(rng, ['wait {n} seconds', 'pause the script for {n} seconds', 'sleep for {n} seconds']).format(n=n)
        return lead(rng, t, PY_FORMS), f'import time\ntime.sleep({n})', [f'time.sleep({n})']
    if k == 6:
        f, d = pick(rng, FILES), pick(rng, DIRS)
        t = pick(rng, ['copy {f} to {d}', 'make a copy of {f} in {d}', 'duplicate {f} into {d}']).format(f=f, d=d)
        return lead(rng, t, PY_FORMS), f'import shutil\nshutil.copy("{f}", "{d}")', [f'shutil.copy("{f}", "{d}")']
    if k == 7:
        f = pick(rng, FILES)
        t = pick(rng, ['delete the file {f}', 'remove {f}', 'erase the file {f} from disk']).format(f=f)
        return lead(rng, t, PY_FORMS), f'import os\nos.remove("{f}")', [f'os.remove("{f}")']
    if k == 8:
        f = pick(rng, ARCHIVES)
        t = pick(rng, ['read the JSON file {f}.json', 'load {f}.json into a dict', 'parse the file {f}.json']).format(f=f)
        return lead(rng, t, PY_FORMS), f'import json\nwith open("{f}.json") as f:\n    data = json.load(f)', [f'open("{f}.json")', 'json.load(f)']
    if k == 9:
        fn, n = pick(rng, PYFUNCS), pick(rng, NUMS)
        t = pick(rng, ['run {fn} every {n} minutes', 'schedule the function {fn} every {n} minutes', 'call {fn} once every {n} minutes']).format(fn=fn, n=n)
        return lead(rng, t, PY_FORMS), f'import schedule\nschedule.every({n}).minutes.do({fn})', [f'schedule.every({n}).minutes.do({fn})']
    if k == 10:
        v = pick(rng, ENVVARS)
        t = pick(rng, ['read the environment variable {v}', 'get the value of {v} from the environment', 'look up the env var {v}']).format(v=v)
        return lead(rng, t, PY_FORMS), f'import os\nvalue = os.environ["{v}"]', [f'os.environ["{v}"]']
    f, x = pick(rng, FILES), pick(rng, TEXTS)
    t = pick(rng, ['write "{x}" to {f}', 'save the text "{x}" in {f}', 'put "{x}" into the file {f}']).format(f=f, x=x)
    return lead(rng, t, PY_FORMS), f'with open("{f}", "w") as f:\n    f.write("{x}")', [f'open("{f}", "w")', f'f.write("{x}")']


# troubleshooting: a symptom -> the cause and the first thing to do --------------------------------------------------
TS_FORMS = ['{t}', '{t}', 'help: {t}', '{t}. What should I do?', 'why? {t}', '{t}. How do I fix it?', 'problem: {t}']


def troubleshooting_item(rng):
    k = rng.randrange(12)
    if k == 0:
        s = pick(rng, SERVICES)
        t = pick(rng, ['{s} fails to start', 'the {s} service will not start', '{s} does not come up after a reboot']).format(s=s)
        return lead(rng, t, TS_FORMS), f'The service fails at startup. Read its logs with journalctl -u {s}, fix the error they show, then start it again.', [f'journalctl -u {s}']
    if k == 1:
        p = pick(rng, PORTS)
        t = pick(rng, ['port {p} is already in use', 'I get "address already in use" on port {p}', 'my server cannot bind to port {p}']).format(p=p)
        return lead(rng, t, TS_FORMS), f'Another process holds port {p}. Find it with sudo lsof -i :{p} and stop it, or use another port.', [f'lsof -i :{p}']
    if k == 2:
        h = pick(rng, HOSTS)
        t = pick(rng, ['the disk on {h} is full', 'I get "no space left on device" on {h}', '{h} has run out of disk space']).format(h=h)
        return lead(rng, t, TS_FORMS), 'The disk is full. Find the largest folders with du -sh /* and delete or rotate old logs.', ['du -sh', 'logs']
    if k == 3:
        f = pick(rng, SCRIPTS)
        t = pick(rng, ['I get "permission denied" when I run ./{f}', 'running ./{f} says permission denied', './{f}: Permission denied']).format(f=f)
        return lead(rng, t, TS_FORMS), f'The file is not executable. Run chmod +x {f}, then run it again.', [f'chmod +x {f}']
    if k == 4:
        h, p = pick(rng, HOSTS), pick(rng, PORTS)
        t = pick(rng, ['connection refused to {h}:{p}', 'I cannot connect to {h} on port {p}: connection refused', 'curl says connection refused for {h}:{p}']).format(h=h, p=p)
        return lead(rng, t, TS_FORMS), f'Nothing listens on {h}:{p}. Check that the service is running and that the firewall allows port {p}.', [f'port {p}', 'firewall']
    if k == 5:
        m = pick(rng, MODULES)
        t = pick(rng, ["ModuleNotFoundError: No module named '{m}'", 'Python cannot find the module {m}', "import {m} fails with No module named '{m}'"]).format(m=m)
        return lead(rng, t, TS_FORMS), f'The package is not installed in this environment. Run pip install {m}.', [f'pip install {m}']
    if k == 6:
        c = pick(rng, COMMANDS)
        t = pick(rng, ['bash: {c}: command not found', 'the shell says command not found for {c}', 'I cannot run {c}: command not found']).format(c=c)
        return lead(rng, t, TS_FORMS), f'{c} is not installed or not on your PATH. Install it, or add its folder to PATH.', ['not installed', 'PATH']
    if k == 7:
        h = pick(rng, HOSTS)
        t = pick(rng, ['{h} is very slow', 'the CPU of {h} is at 100%', 'everything on {h} is sluggish']).format(h=h)
        return lead(rng, t, TS_FORMS), 'A process is using the CPU. Find it with top, then check its logs or restart it.', [{'regex': r'\btop\b'}]
    if k == 8:
        p = pick(rng, PROCS)
        t = pick(rng, ['{p} was killed: out of memory', 'the kernel killed {p} (OOM)', '{p} keeps dying with out of memory']).format(p=p)
        return lead(rng, t, TS_FORMS), f'The machine ran out of memory. Check free -h, then lower the memory use of {p} or add swap.', ['free -h', f'memory use of {p}']
    if k == 9:
        d = pick(rng, DOMAINS)
        t = pick(rng, ['could not resolve host {d}', 'DNS lookup fails for {d}', 'ping {d} says unknown host']).format(d=d)
        return lead(rng, t, TS_FORMS), f'The name does not resolve. Check /etc/resolv.conf and test with dig {d}.', [f'dig {d}']
    if k == 10:
        t = pick(rng, ['git push is rejected', 'git push fails with "fetch first"', 'I cannot push: updates were rejected'])
        return lead(rng, t, TS_FORMS), 'The remote has commits you do not have. Run git pull --rebase, then push again.', ['git pull --rebase']
    d = pick(rng, DOMAINS)
    t = pick(rng, ['the SSL certificate of {d} has expired', 'browsers say the certificate for {d} is expired', 'https://{d} shows a certificate error']).format(d=d)
    return lead(rng, t, TS_FORMS), f'The certificate for {d} expired. Renew it with sudo certbot renew, then reload the web server.', ['certbot renew']


SKILL_ITEM = {'code': code_item, 'linux-commands': linux_item, 'python-automation': python_item, 'troubleshooting': troubleshooting_item}

# general mix for the base: chat turns that teach the format, copying and stopping, plus plain text -------------------
COUNTRIES = [('France', 'Paris'), ('Japan', 'Tokyo'), ('Italy', 'Rome'), ('Spain', 'Madrid'), ('Germany', 'Berlin'),
             ('Canada', 'Ottawa'), ('Egypt', 'Cairo'), ('Peru', 'Lima'), ('Kenya', 'Nairobi'), ('Norway', 'Oslo'),
             ('Poland', 'Warsaw'), ('Greece', 'Athens'), ('Chile', 'Santiago'), ('Ireland', 'Dublin'), ('India', 'New Delhi')]
OPPOSITES = [('hot', 'cold'), ('big', 'small'), ('fast', 'slow'), ('up', 'down'), ('light', 'dark'), ('open', 'closed'),
             ('happy', 'sad'), ('early', 'late'), ('full', 'empty'), ('old', 'new'), ('loud', 'quiet'), ('wet', 'dry')]
ANIMALS = [('cat', 'meows', 'mice'), ('dog', 'barks', 'meat'), ('cow', 'moos', 'grass'), ('horse', 'neighs', 'hay'),
           ('duck', 'quacks', 'seeds'), ('sheep', 'bleats', 'grass'), ('owl', 'hoots', 'mice'), ('lion', 'roars', 'meat')]
NOUNS = ['apple', 'river', 'garden', 'window', 'teacher', 'train', 'forest', 'bottle', 'music', 'letter', 'mountain',
         'candle', 'market', 'bridge', 'cloud', 'pencil', 'kitchen', 'island', 'village', 'summer']
COLORS = ['red', 'blue', 'green', 'yellow', 'white', 'black', 'orange', 'purple']
PEOPLE = ['Anna', 'Ben', 'Chloe', 'David', 'Emma', 'Felix', 'Grace', 'Hugo', 'Iris', 'Jack']
GREETINGS = [('Hello', 'Hello! How can I help you today?'), ('Hi', 'Hi! What can I do for you?'),
             ('Good morning', 'Good morning! How can I help?'), ('Thanks', 'You are welcome!'),
             ('Thank you', 'You are welcome. Anything else?'), ('Who are you?', 'I am a small demo assistant.'),
             ('How are you?', 'I am fine, thank you. How can I help you?'), ('Bye', 'Goodbye! Have a nice day.')]


def general_chat(rng):
    k = rng.randrange(10)
    if k == 0:
        a, b = rng.randrange(1, 50), rng.randrange(1, 50)
        return pick(rng, ['What is {a} plus {b}?', 'Add {a} and {b}.', 'How much is {a} + {b}?']).format(a=a, b=b), f'{a} plus {b} is {a + b}.'
    if k == 1:
        phrase = ' '.join(rng.sample(NOUNS, rng.randrange(2, 5)))
        return pick(rng, ['Repeat after me: {p}', 'Say "{p}"', 'Echo this: {p}']).format(p=phrase), phrase
    if k == 2:
        c, city = pick(rng, COUNTRIES)
        return pick(rng, ['What is the capital of {c}?', 'Name the capital of {c}.', 'Which city is the capital of {c}?']).format(c=c), f'The capital of {c} is {city}.'
    if k == 3:
        a, b = pick(rng, OPPOSITES)
        return pick(rng, ['What is the opposite of {a}?', 'Give the opposite of "{a}".']).format(a=a), f'The opposite of {a} is {b}.'
    if k == 4:
        w = pick(rng, NOUNS)
        return pick(rng, ['Write {w} in capital letters.', 'Uppercase the word {w}.']).format(w=w), w.upper()
    if k == 5:
        a = rng.randrange(1, 20)
        b = a + rng.randrange(2, 6)
        return pick(rng, ['Count from {a} to {b}.', 'List the numbers from {a} to {b}.']).format(a=a, b=b), ', '.join(str(i) for i in range(a, b + 1))
    if k == 6:
        name, sound, food = pick(rng, ANIMALS)
        return pick(rng, ['Tell me about the {n}.', 'What do you know about a {n}?', 'Describe a {n}.']).format(n=name), f'The {name} is an animal. It {sound} and eats {food}.'
    if k == 7:
        g, a = pick(rng, GREETINGS)
        return g, a
    if k == 8:
        w = pick(rng, NOUNS)
        return pick(rng, ['Spell the word {w}.', 'How do you spell {w}?']).format(w=w), '-'.join(w)
    p, c, n = pick(rng, PEOPLE), pick(rng, COLORS), pick(rng, NOUNS)
    return pick(rng, ['Write a sentence about {p} and a {c} {n}.', 'Make up a short sentence with {p}, {c} and {n}.']).format(p=p, c=c, n=n), f'{p} found a {c} {n} and smiled.'


LETTERS = 'abcdefghijklmnopqrstuvwxyz'
SEPARATORS = ['.', '/', '-', '_', ':', '*.', ' ']


def random_word(rng):
    """A made-up identifier: letters with sometimes a digit or a capital, so copying cannot lean on known words."""
    w = ''.join(rng.choice(LETTERS) for _ in range(rng.randrange(1, 9)))
    if rng.random() < 0.2:
        w += str(rng.randrange(100))
    return w.capitalize() if rng.random() < 0.1 else w


def random_value(rng):
    """One to three made-up words joined the way file names, paths and options are (`ab.txt`, `/qx/zr`, `k-9`)."""
    out = random_word(rng)
    for _ in range(rng.choices([0, 1, 2], [5, 4, 1])[0]):
        out += rng.choice(SEPARATORS) + random_word(rng)
    return ('/' + out) if rng.random() < 0.15 else out


def general_copy(rng):
    """Copying made-up values into a frame: what every skill's answers need (a command's file name, a function's
    name), taught on values no skill uses."""
    x, y, z = random_value(rng), random_value(rng), random_value(rng)
    k = rng.randrange(6)
    if k == 0:
        return pick(rng, ['Repeat after me: {x}', 'Say "{x}"', 'Echo this: {x}', 'Copy this exactly: {x}']).format(x=x), x
    if k == 1:
        keys = rng.sample(['a', 'b', 'c', 'x', 'y', 'name', 'size', 'color', 'key', 'id'], 3)
        vals = [x, y, z]
        j = rng.randrange(3)
        facts = ', '.join(f'{kk} = {v}' for kk, v in zip(keys, vals))
        return pick(rng, ['Given {f}, what is {k}?', 'If {f}, what is {k}?', '{f}. Tell me {k}.']).format(f=facts, k=keys[j]), f'{keys[j]} = {vals[j]}'
    if k == 2:
        return pick(rng, ['Put {x} in brackets.', 'Wrap {x} in square brackets.']).format(x=x), f'[{x}]'
    if k == 3:
        return pick(rng, ['Put {x} in quotes.', 'Quote {x}.']).format(x=x), f'"{x}"'
    if k == 4:
        return pick(rng, ['Join {x} and {y} with a space.', 'Write {x} then {y}.', 'Put {y} after {x}.']).format(x=x, y=y), f'{x} {y}'
    return pick(rng, ['Write {x} twice.', 'Say {x} two times.']).format(x=x), f'{x} {x}'


def general_text(rng):
    """A few sentences of plain prose (no chat turns)."""
    out = []
    for _ in range(rng.randrange(2, 5)):
        p, c, n, m = pick(rng, PEOPLE), pick(rng, COLORS), pick(rng, NOUNS), pick(rng, NOUNS)
        a, b = pick(rng, OPPOSITES)
        out.append(pick(rng, ['{p} walked to the {n} on a {a} day.', 'The {c} {n} was next to the {m}.', '{p} likes the {m} because it is {a}.',
                              'In the morning the {n} was {a}, but at night it was {b}.', '{p} painted the {n} {c}.']).format(p=p, c=c, n=n, m=m, a=a, b=b))
    return ' '.join(out)


def split_items(skill, seed, n_eval, n_train):
    """Eval items first (unique prompts), then training items whose prompts never equal an eval prompt."""
    rng = random.Random(f'{seed}:{skill}')
    make = SKILL_ITEM[skill]
    eval_items, eval_prompts = [], set()
    while len(eval_items) < n_eval:
        prompt, answer, checks = make(rng)
        if prompt in eval_prompts:
            continue
        eval_prompts.add(prompt)
        eval_items.append((prompt, answer, checks))
    train = []
    while len(train) < n_train:
        prompt, answer, _ = make(rng)
        if prompt not in eval_prompts:
            train.append((prompt, answer))
    return eval_items, train


def general_items(seed, n_chat, n_text, copy_share=0.5):
    """Chat turns (a `copy_share` of them copying made-up values) and prose, all seeded."""
    rng = random.Random(f'{seed}:general')
    chat = [general_copy(rng) if rng.random() < copy_share else general_chat(rng) for _ in range(n_chat)]
    return chat, [general_text(rng) for _ in range(n_text)]
