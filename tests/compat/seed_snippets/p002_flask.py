# Seed 002 "Exposing Functions" and "Serving Functions With Flask" (seed 001 prints the Flask
# part). The page serves a `functions` registry defined elsewhere; test_seed_snippets.py runs this
# file with the registry of each snippet, and Flask's names (which the walkthrough imports).
from flask import Flask, make_response, request

app = Flask(__name__)

# --- page code ---
from statefun import RequestReplyHandler

# page bug: handler RequestReplyHandler(functions)
handler = RequestReplyHandler(functions)  # fixed: the page leaves out the `=`

# --- page code ---
@app.route('/statefun', methods=['POST'])
def handle():
    response_data = handler(request.data)
    response = make_response(response_data)
    response.headers.set('Content-Type', 'application/octet-stream')
    return response


if __name__ == "__main__":
    app.run()
