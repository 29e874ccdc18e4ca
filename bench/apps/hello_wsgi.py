# The hello-world WSGI app for Gunicorn in bench/accept.ts: the same body as examples/plain.js's `/`.
import os



def app(environ, start_response):
    body = ("hello from worker %d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
