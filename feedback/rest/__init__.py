"""The REST kit every app's API builds on: the one error body and its exception handler, the bounded
JSON parser, the schema hook that declares the error answers, and the serializers of the domain."""
