"""Mutant: the repository extension on the gateway (index, load, unload) lost its admin token check; the
rest of the admin API keeps it."""

from mutant_patch import mutate

mutate(
    "sut.gateway.repository_api",
    'router = APIRouter(prefix="/v2/repository", dependencies=[Depends(require_token)])',
    'router = APIRouter(prefix="/v2/repository")',
)
