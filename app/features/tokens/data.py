from stario import JsonValue

from app.accounts.store import TokenInfo

# Published when an account's tokens change; its pages repaint their token list.
TOKENS_CHANGED = "tokens.changed"


def tokens_changed(owner: str) -> str:
    return f"{TOKENS_CHANGED}.{owner}"


def token_json(token: TokenInfo) -> dict[str, JsonValue]:
    return {
        "id": token.id,
        "label": token.label,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
    }
