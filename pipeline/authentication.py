"""DRF's token authentication, telling a client that sends another scheme which one to use."""

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header


class TokenSchemeAuthentication(TokenAuthentication):
    """`Authorization: Token KEY`. A `Bearer` header (what most tools send by habit) is
    refused with a 401 that names the scheme, instead of DRF's "credentials were not
    provided"."""

    def authenticate(self, request):
        scheme = get_authorization_header(request).split(b" ", 1)[0].lower()
        if scheme == b"bearer":
            raise exceptions.AuthenticationFailed(
                "The API's scheme is Token, not Bearer: send `Authorization: Token <key>`."
            )
        return super().authenticate(request)
