"""{{name}}'s own test, run by `gati test` (after `gati build`): the module as built, in its sandbox."""


async def test_hello_answers_with_its_input(gati_module):
    module = await gati_module("{{name}}")
    reply = await module.hello({"name": "ada"})
    assert reply == {"message": "{{greeting}}", "input": {"name": "ada"}}
