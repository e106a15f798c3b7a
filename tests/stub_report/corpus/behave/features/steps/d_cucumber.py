"""Corpus: cucumber expressions (behave >= 1.2.7)."""

from unittest.mock import Mock

from behave import given, then
from behave.cucumber_expression import use_step_matcher_for_cucumber_expressions

use_step_matcher_for_cucumber_expressions()


@given("I have {int} cucumber(s) in my basket")
def have_cucumbers(context, count):  # expect: hollow mock.library
    context.basket = Mock()
    context.basket.count.return_value = count


@then("the basket/bag is checked")
def basket_checked(context):  # expect: hollow
    context.basket.count.assert_called()
